#!/usr/bin/env bash
# Mutation testing of claus's framework logic with mutmut (pip install -e '.[mutation]').
# Not part of CI: a full run takes hours on 2 cores. bench/MUTATION.md records the last scores.
#
#   bench/mutation.sh [GROUP ...]            mutate and test (default: every group)
#   bench/mutation.sh --report [GROUP ...]   the score and the surviving mutants of each group
#   bench/mutation.sh --show GROUP MUTANT    the diff of one mutant
#   bench/mutation.sh --kill GROUP MUTANT TEST...
#                                            whether TEST (pytest ids, run from this checkout)
#                                            fail with that one mutant applied: how a test
#                                            written for a survivor is checked (the mutated
#                                            copy comes first on PYTHONPATH: processes a test
#                                            starts with a PYTHONPATH of their own see the
#                                            checkout's code, check those in a git worktree)
#
# GROUP is one of: selection eval annotation rounds. Each group mutates its modules only and runs
# its own fast tests only (GROUP_TESTS below: files or single tests; missing files are left out;
# eval/pipeline.py's fast tests live in the training test files); mutmut then runs,
# for every mutant, just the tests that executed the mutated function.
#
# mutmut rewrites source files, so each group works in its own copy of the committed tree
# ($MUT_REV, default HEAD, by `git archive`; the compiled claus_ext/_C*.so is copied from this
# checkout) under $MUT_ROOT/GROUP (default /tmp/claus-mutation): this checkout is never touched.
# python/claus moves to claus/ in the copy (mutmut imports mutated code from ./, src/ or source/).
# Results are kept per mutant in the copy's mutants/ folder, so an interrupted run resumes where
# it stopped: run the same command again. MUT_FRESH=1 makes a new copy (of the current $MUT_REV).
# MUT_JOBS (default 1) mutants run at once; run it under `nice -n 10` on a shared machine.
#
# MUT_SAMPLE=N tests a uniform random sample of N mutants per group (seeded, kept in the copy's
# sample.txt, so reruns resume the same sample and the report scores that sample only) instead
# of all of them: the four groups hold about 8000 mutants, days of CPU on 2 shared cores. A
# larger MUT_SAMPLE after `rm $MUT_ROOT/GROUP/sample.txt` extends the same sample (same order).
# MUT_NAMES=FILE tests only the mutants named in FILE instead (one a line; e.g. an earlier run's
# survivors, in a new MUT_ROOT, after tests were written for them).
#
# Not mutated: raise statements and log calls (see do_not_mutate_patterns below).
# Score = (killed + timeout) / (all mutants - skipped): a mutant with no test counts as survived.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
MUT_ROOT=${MUT_ROOT:-/tmp/claus-mutation}
MUT_REV=${MUT_REV:-HEAD}
MUT_JOBS=${MUT_JOBS:-1}
export CLAUS_SHARED=${CLAUS_SHARED:-$(dirname "$repo")/shared}

declare -A GROUP_MODULES=(
  [selection]="claus/selection/*"
  [eval]="claus/eval/*"
  [annotation]="claus/annotation/*"
  [rounds]="claus/rounds.py"
)
declare -A GROUP_TESTS=(
  [selection]="tests/test_strategies.py tests/test_selection_scoring.py tests/test_selection_properties.py tests/test_pool.py tests/test_mutants.py"
  [eval]="tests/test_eval_metrics.py tests/test_video_ap.py tests/test_act_boxes.py tests/test_mutants.py
          tests/test_training.py::test_evaluation_of_perfect_and_empty_predictions
          tests/test_training_options.py::test_temporal_smoothing_of_foreground
          tests/test_training_options.py::test_video_class_scope_weights_frames_by_foreground"
  [annotation]="tests/test_annotation.py tests/test_annotation_tracks.py tests/test_mutants.py
                tests/test_import_stream.py tests/test_labelstudio_export.py tests/test_faults.py"
  [rounds]="tests/test_rounds.py tests/test_resume_whole.py tests/test_mutants.py tests/test_faults.py
            tests/test_run_folder.py tests/test_strategy_objects.py tests/test_unlabelled_videos.py"
)
ALL_GROUPS="selection eval annotation rounds"

toml_list() {  # words -> ["a", "b"]
  local out="" w
  for w in "$@"; do out+="${out:+, }\"$w\""; done
  echo "[$out]"
}

prepare() {  # group -> a copy at $MUT_ROOT/group with its mutmut configuration
  local g=$1 dir=$MUT_ROOT/$1 t tests=()
  if [[ -d $dir && -z ${MUT_FRESH:-} ]]; then return; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  git -C "$repo" archive "$MUT_REV" | tar -x -C "$dir"
  mv "$dir/python/claus" "$dir/claus"
  rmdir "$dir/python" 2>/dev/null || true
  cp "$repo"/claus_ext/_C*.so "$dir/claus_ext/"
  for t in ${GROUP_TESTS[$g]}; do [[ -f $dir/${t%%::*} ]] && tests+=("$t"); done
  cat >>"$dir/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["claus"]
only_mutate = $(toml_list ${GROUP_MODULES[$g]})
also_copy = ["claus_ext", "configs"]
pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
pytest_add_cli_args_test_selection = $(toml_list "${tests[@]}")
process_isolation = "forkserver"
# Messages for people: a raise statement and a log call are not mutated (their wording is no
# behaviour; the exception type and the condition that raises still are).
do_not_mutate_patterns = ['^\\s*raise\\s', '^\\s*log\\.(debug|info|warning|error|exception)\\(']
EOF
  echo "== $g: copy of $(git -C "$repo" rev-parse --short "$MUT_REV") at $dir; tests: ${tests[*]}"
}

generate() {  # the mutants of the copy in $PWD, without running anything (mutmut internals)
  python3 - <<'PY'
from os import makedirs
from mutmut.__main__ import (copy_also_copy_files, copy_src_dir, create_mutants,
                             set_mutant_under_test, setup_source_paths,
                             store_lines_covered_by_tests)
set_mutant_under_test("mutant_generation")
makedirs("mutants", exist_ok=True)
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
store_lines_covered_by_tests()
create_mutants(1)
PY
}

mutant_names() {  # name status, one a line, for every mutant of the copy in $PWD
  python3 - <<'PY'
import json, pathlib
from mutmut.stats import status_by_exit_code
for meta in sorted(pathlib.Path("mutants").rglob("*.py.meta")):
    for k, v in json.loads(meta.read_text())["exit_code_by_key"].items():
        print(k, status_by_exit_code[v].replace(" ", "_"))
PY
}

run_sample() {  # group -> mutmut run on the sample's mutants not checked yet
  local g=$1 dir=$MUT_ROOT/$1 todo
  cd "$dir"
  [[ -f mutants/claus/__init__.py ]] || generate >/dev/null
  if [[ ! -f sample.txt && -n ${MUT_NAMES:-} ]]; then
    cp "$MUT_NAMES" sample.txt
  elif [[ ! -f sample.txt ]]; then
    mutant_names | python3 -c '
import random, sys
names = sorted(line.split()[0] for line in sys.stdin)
random.Random(21).shuffle(names)
print("\n".join(sorted(names[: int(sys.argv[1])])))
' "$MUT_SAMPLE" >sample.txt
  fi
  todo=$(mutant_names | awk 'NR == FNR { want[$1] = 1; next } ($1 in want) && $2 == "not_checked" { print $1 }' sample.txt -)
  echo "== $g: sample of $(wc -l <sample.txt) mutants, $(echo "$todo" | grep -c . || true) to run"
  if [[ -n $todo ]]; then
    # shellcheck disable=SC2086
    mutmut run --max-children "$MUT_JOBS" $todo || echo "== $g: mutmut exited $?"
  fi
  cd - >/dev/null
}

report() {  # group -> score line and survivors, from the copy's mutmut results
  local g=$1 dir=$MUT_ROOT/$1
  if [[ ! -d $dir/mutants ]]; then echo "== $g: not run"; return; fi
  (cd "$dir" && mutant_names) | python3 -c '
import collections, pathlib, sys
group, sample = sys.argv[1], pathlib.Path(sys.argv[2])
status = dict(line.split() for line in sys.stdin)
total = len(status)
if sample.is_file():
    status = {k: status[k] for k in sample.read_text().split() if k in status}
    print(f"== {group}: sample of {len(status)} of {total} mutants")
status = {k: v.replace("_", " ") for k, v in status.items()}
n = collections.Counter(status.values())
done = sum(c for s, c in n.items() if s not in ("not checked", "skipped"))
hit = n["killed"] + n["timeout"]
score = 100 * hit / done if done else float("nan")
print(f"== {group}: {score:.1f}% killed ({hit} of {done} run; "
      + ", ".join(f"{s} {c}" for s, c in sorted(n.items())) + ")")
for name, st in sorted(status.items()):
    if st not in ("killed", "timeout", "not checked", "skipped"):
        print(f"   {st:11s} {name}")
' "$g" "$dir/sample.txt"
}

if [[ ${1:-} == --report ]]; then
  shift
  for g in ${@:-$ALL_GROUPS}; do report "$g"; done
  exit 0
fi
if [[ ${1:-} == --show ]]; then
  (cd "$MUT_ROOT/$2" && mutmut show "$3")
  exit 0
fi
if [[ ${1:-} == --kill ]]; then
  g=$2 m=$3
  shift 3
  src=$MUT_ROOT/$g
  k=$(mktemp -d "$MUT_ROOT/kill.XXXXXX")
  trap 'rm -rf "$k"' EXIT
  mkdir "$k/mutants"
  cp -r "$src/claus" "$src/pyproject.toml" "$k/"
  (cd "$src/mutants" && cp -r --parents claus "$k/mutants/")
  (cd "$k" && mutmut apply "$m" >/dev/null) || { echo "could not apply $m" >&2; exit 2; }
  if diff -rq "$src/claus" "$k/claus" >/dev/null; then echo "could not apply $m" >&2; exit 2; fi
  # The mutated copy of claus comes first on the path; tests and claus_ext from this checkout.
  if (cd "$repo" && PYTHONPATH=$k python -m pytest -q -x -p no:cacheprovider "$@" \
      >"$k/out.txt" 2>&1); then
    echo "survives $m"
    exit 1
  fi
  echo "killed   $m ($(grep -m1 -E '^(FAILED|ERROR)' "$k/out.txt" | cut -d' ' -f2))"
  exit 0
fi

for g in ${@:-$ALL_GROUPS}; do
  [[ -n ${GROUP_MODULES[$g]:-} ]] || { echo "unknown group $g (one of: $ALL_GROUPS)" >&2; exit 2; }
  prepare "$g"
  echo "== $g: mutmut run ($(date -u +%FT%TZ))"
  if [[ -n ${MUT_SAMPLE:-} || -n ${MUT_NAMES:-} ]]; then
    run_sample "$g"
  else
    (cd "$MUT_ROOT/$g" && mutmut run --max-children "$MUT_JOBS") || echo "== $g: mutmut exited $?"
  fi
  report "$g"
done
