"""The one run configuration: fields from one source for flags and files, typed training
options, the dataset spec saved with a fingerprint, resume of moved or changed data, one-line
errors of every command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from claus import config as C
from claus.config import DatasetSpec, RunConfig
from claus.data import load_dataset, save_custom
from claus.rounds import RunMismatchError, Trainer, read_run_config, run_rounds
from claus.training import TrainConfig


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_dataset("synthetic", preset="tiny", cache_dir=tmp_path_factory.mktemp("syn"))


def fake_trainer() -> Trainer:
    """Trains nothing: the rounds' bookkeeping without the cost (random needs no scores)."""
    from claus.models import build_model

    def fit(train, ds, labels, run_dir, model=None, centers=None, progress=True):
        assert isinstance(train, TrainConfig)
        return build_model("tiny", ds.num_classes)

    return Trainer(fit=fit, evaluate=lambda m, d, t, progress=True: {"f-mAP@0.5": 1.0},
                   geometry=lambda t: {"T": 8, "stride": 2, "size": None, "device": "cpu"})


@pytest.fixture
def custom(tmp_path, tiny) -> Path:
    """synthetic:tiny's annotations as a custom JSON dataset (no frames are needed by the
    random strategy and the fake trainer)."""
    path = tmp_path / "data" / "ds.json"
    path.parent.mkdir()
    save_custom(tiny, path)
    return path


def al_cfg(data, **kw) -> RunConfig:
    base = dict(strategy="random", seed=1, init_percent=5, step_percent=5, target_percent=10,
                videos_per_round=2)
    base.update(kw)
    return RunConfig(data=data, **base)


# ---------------------------------------------------------------------------- the field table
def test_every_field_is_a_flag_and_a_file_field(tmp_path, capsys):
    from claus import train as train_cli

    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    text = capsys.readouterr().out
    names = [f for group in C.FIELDS.values() for f in group]
    assert len({f.name for f in names}) == len(names)  # one flat name per field
    for f in names:
        assert f.flag in text, f.flag
    # TrainConfig fields are all there, but beta (the run's) is not a training field.
    train_names = {f.name for f in C.FIELDS["training"]}
    assert train_names == {f for f in TrainConfig().to_dict()} - {"beta"}
    # The active-learning mode is documented in the same help.
    for word in ("--strategy", "--init", "--step", "--target", "--oracle", "--passes",
                 "--clusters", "--frame-score", "--labels", "--budget", "uncertainty"):
        assert word in text, word
    # Each field in a config file is read with the type its flag has.
    f = tmp_path / "all.yaml"
    f.write_text("epochs: '3'\nwarm_start: yes\ncluster_cap: 0.5\nstrategy: claus\n"
                 "videos_per_round: null\nsplit: 2\n")
    got = C.load_config_file(f)
    assert got == {"epochs": 3, "warm_start": True, "cluster_cap": 0.5,
                   "strategies": ["claus"], "videos_per_round": None, "split": 2}


def test_unknown_and_mistyped_fields_name_themselves(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epoch: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown field 'epoch'"):
        C.load_config_file(bad)
    bad.write_text("epochs: three\n")
    with pytest.raises(ValueError, match=r"bad.yaml: field epochs expects int, got 'three'"):
        C.load_config_file(bad)
    bad.write_text("lr: .nan\n")
    with pytest.raises(ValueError, match="field lr expects float"):
        C.load_config_file(bad)
    with pytest.raises(ValueError, match="unknown training field.*epoch"):
        RunConfig(train={"epoch": 3})
    with pytest.raises(ValueError, match="--target: must be <= 100"):
        RunConfig(target_percent=120)


def test_config_file_json_and_yaml_agree(tmp_path):
    y, j = tmp_path / "a.yaml", tmp_path / "a.json"
    y.write_text("dataset: synthetic:tiny\nstrategies: [random, claus]\ninit: 2\n"
                 if False else "dataset: synthetic:tiny\nstrategies: [random, claus]\n"
                 "init_percent: 2\nlr: 0.001\n")
    j.write_text(json.dumps({"dataset": "synthetic:tiny", "strategies": ["random", "claus"],
                             "init_percent": 2, "lr": 0.001}))
    assert C.load_config_file(y) == C.load_config_file(j)
    cfg = C.run_config(C.load_config_file(y), "claus", 3)
    assert cfg.data == DatasetSpec("synthetic", preset="tiny")
    assert cfg.init_percent == 2 and cfg.train.lr == 0.001 and cfg.training().seed == 3
    assert cfg.train.channel_shuffle is True  # the synthetic dataset's training default


def test_dataset_spec_rules(tmp_path):
    assert DatasetSpec("synthetic:tiny") == DatasetSpec("synthetic", preset="tiny")
    assert DatasetSpec().preset == "demo"
    with pytest.raises(ValueError, match="--root: dataset 'ucf101-24' needs a path"):
        DatasetSpec("ucf101-24")
    with pytest.raises(ValueError, match="--root: the synthetic dataset is generated"):
        DatasetSpec("synthetic", root="x")
    with pytest.raises(ValueError, match="--preset: presets are for the synthetic"):
        DatasetSpec("custom", root="x.json", preset="tiny")
    with pytest.raises(ValueError, match="unknown synthetic preset 'huge'"):
        DatasetSpec("synthetic:huge")
    rel = DatasetSpec("custom", root="rel/ds.json")
    assert Path(rel.root).is_absolute() and rel.root.endswith("rel/ds.json")
    assert DatasetSpec.from_json(rel.to_json()) == rel


def test_version1_run_config_resumes_unchanged(tmp_path, tiny):
    """A run folder written before the dataset spec and the typed training options resumes
    with the same effective configuration (same training options, same beta)."""
    cfg = al_cfg("synthetic:tiny", strategy="claus", train={"epochs": 3})
    v1 = {"format": "claus.run", "version": 1, "dataset": "synthetic", "preset": "tiny",
          "data_seed": 0, "strategy": "claus", "seed": 1, "init_percent": 5,
          "step_percent": 5, "target_percent": 10, "init_frames_per_video": 3,
          "videos_per_round": 2, "passes": 10, "score_batch": 16, "frame_score": "mass",
          "clusters": 5, "cluster_cap": None, "warm_start": False, "train": {"epochs": 3},
          "oracle": "simulated"}
    old = RunConfig.from_json(v1)
    assert old.to_json() == cfg.to_json()
    assert old.training() == cfg.training() and old.training().beta == C.CLAUS_BETA
    assert old.training().channel_shuffle is True
    v1["train"] = {"epochs": 3, "beta": 0.5}
    assert RunConfig.from_json(v1).training().beta == 0.5


# ---------------------------------------------------------------------------- data on resume
def test_python_run_resumes_from_the_cli_and_follows_moved_data(tmp_path, custom, capsys):
    from claus import train as train_cli

    ds = load_dataset("custom", custom)
    run = tmp_path / "run"
    cfg = al_cfg(ds.spec)
    run_rounds(run, cfg, trainer=fake_trainer(), dataset=ds, progress=False)
    record = json.loads((run / "dataset.json").read_text())
    assert record["spec"]["root"] == str(custom) and list(record["files"]) == ["ds.json"]
    # Resumed through the CLI without dataset=: the run's own spec reopens the data.
    before = (run / "metrics.jsonl").read_text()
    assert train_cli.main(["--resume", str(run), "--quiet"]) == 0
    assert (run / "metrics.jsonl").read_text() == before
    capsys.readouterr()
    # The data moved: refused with a message that says how to point at the new place.
    moved = tmp_path / "elsewhere"
    shutil.move(custom.parent, moved)
    assert train_cli.main(["--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "does not exist" in err and "--root NEW_PATH" in err
    # Pointed there: accepted (same annotations), and remembered.
    assert train_cli.main(["--resume", str(run), "--root", str(moved / "ds.json"),
                           "--quiet"]) == 0
    assert read_run_config(run).data.root == str(moved / "ds.json")
    assert train_cli.main(["--resume", str(run), "--quiet"]) == 0
    capsys.readouterr()
    # Other flags are refused on resume: the run keeps its configuration.
    assert train_cli.main(["--resume", str(run), "--epochs", "3"]) == 2
    assert "--epochs" in capsys.readouterr().err
    # The annotations changed: refused, naming the file and the way out.
    doc = json.loads((moved / "ds.json").read_text())
    doc["videos"][0]["tubes"][0]["boxes"][0][0] += 1.0
    (moved / "ds.json").write_text(json.dumps(doc))
    assert train_cli.main(["--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "ds.json (sha256" in err and "differ from those the run" in err
    with pytest.raises(C.DataMovedError):
        run_rounds(run, read_run_config(run), trainer=fake_trainer(), progress=False)


def test_relocation_keeps_the_dataset_identity(tmp_path, custom, capsys):
    from claus import train as train_cli

    ds = load_dataset("custom", custom)
    run = tmp_path / "run"
    run_rounds(run, al_cfg(ds.spec, target_percent=5), trainer=fake_trainer(), dataset=ds,
               progress=False)
    assert train_cli.main(["--resume", str(run), "--split", "2"]) == 2
    assert "only the dataset's --root and --store can change" in capsys.readouterr().err


def test_dataset_argument_must_match_the_spec(tmp_path, tiny, custom):
    with pytest.raises(ValueError, match="pass RunConfig\\(data=dataset.spec"):
        run_rounds(tmp_path / "r", al_cfg(DatasetSpec("custom", root=str(custom))),
                   trainer=fake_trainer(), dataset=tiny, progress=False)
    assert not (tmp_path / "r").exists()


def test_mismatch_lists_nested_differences(tmp_path, tiny):
    run = tmp_path / "run"
    run_rounds(run, al_cfg("synthetic:tiny", target_percent=5), trainer=fake_trainer(),
               dataset=tiny, progress=False)
    with pytest.raises(RunMismatchError, match=r"train.lr: 0.003 → 0.001"):
        run_rounds(run, al_cfg("synthetic:tiny", target_percent=5, train={"lr": 1e-3}),
                   trainer=fake_trainer(), dataset=tiny, progress=False)


# ---------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("argv, flag", [
    (["--strategy", "claus", "--epochs", "0"], "--epochs"),  # TrainConfig.epochs
    (["--strategy", "claus", "--target", "0.5"], "--target"),
    (["--strategy", "smart"], "strategy"),
    (["--strategy", "claus", "--labels", "full"], "--labels"),
    (["--target", "5"], "--target"),  # an active-learning option without --strategy
    (["--strategy", "claus", "--dataset", "ucf101-24"], "--root"),
    (["--strategy", "claus", "--device", "cuda"], "--device"),
    (["--strategy", "claus", "--lr", "nan"], "lr"),
    (["--bogus"], "--bogus"),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, argv, flag):
    import torch
    from claus import train as train_cli

    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    monkeypatch.chdir(tmp_path)
    try:
        code = train_cli.main([*argv, "--out", "exp", "--quiet"])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert flag in err and "Traceback" not in err
    assert not (tmp_path / "exp").exists() and not (tmp_path / "runs").exists()


def test_flags_in_any_order(tmp_path):
    from claus import train as train_cli

    p = train_cli.build_parser()
    a = p.parse_args(["--target", "3", "--dataset", "synthetic:tiny", "--strategy", "random",
                      "claus", "--epochs", "2", "--warm-start", "--amp", "false"])
    values = C.given(a, C.field_names(*train_cli.ALL_GROUPS))
    assert values == {"target_percent": 3.0, "dataset": "synthetic:tiny", "epochs": 2,
                      "strategies": ["random", "claus"], "warm_start": True, "amp": False}
    cfg = C.run_config(values, "claus", 0)
    assert cfg.warm_start and cfg.train.epochs == 2 and cfg.train.amp is False


def test_other_commands_take_the_data_flags(capsys):
    from claus import annotate, evaluate, select
    from claus.data import prepare

    for mod in (annotate, evaluate, select, prepare):
        with pytest.raises(SystemExit):
            mod.main(["--help"])
        text = capsys.readouterr().out
        for flag in ("--root", "--store", "--split"):
            assert flag in text, (mod.__name__, flag)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content, says", [
    (lambda: __import__("pickle").dumps({"db": {"x": _Evil()}}), "builtins.print"),
    (lambda: b"\x80\x04garbage", "pyannot.pkl"),
    (lambda: b"", "pyannot.pkl"),
])
def test_bad_annotation_files_are_one_line(tmp_path, monkeypatch, capsys, content, says):
    """An unsafe, truncated or empty annotation pickle: one line naming it, exit 2, nothing
    written, nothing executed."""
    from claus import experiment

    root = tmp_path / "ucf"
    root.mkdir()
    (root / "pyannot.pkl").write_bytes(content())
    (root / "testlist01.txt").write_text("Fencing/v_Fencing_g01_c01\n")
    monkeypatch.chdir(tmp_path)
    rc = experiment.main(["--dataset", "ucf101-24", "--root", str(root), "--strategies",
                          "claus", "--out", "exp", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert says in err and "this must never run" not in out
    assert not (tmp_path / "exp").exists()


def test_rerun_with_another_configuration_is_one_line(tmp_path, tiny, monkeypatch, capsys):
    from claus import experiment

    monkeypatch.setenv("CLAUS_CACHE", str(tmp_path / "cache"))
    argv = ["--preset", "tiny", "--strategies", "random", "--init", "5", "--target", "5",
            "--epochs", "1", "--min-clips-per-epoch", "0", "--device", "cpu", "--out",
            str(tmp_path / "exp"), "--quiet", "--no-pictures", "--no-full"]
    assert experiment.main(argv) == 0
    capsys.readouterr()
    before = (tmp_path / "exp" / "random" / "seed0" / "config.json").read_bytes()
    assert experiment.main([*argv, "--lr", "0.01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "train.lr: 0.003 → 0.01" in err
    assert (tmp_path / "exp" / "random" / "seed0" / "config.json").read_bytes() == before


def test_old_spellings_still_work(capsys):
    """Flags README showed before the configuration moved to claus.config."""
    from claus import evaluate, experiment
    from claus import train as train_cli

    a = experiment.build_parser().parse_args(
        ["--preset", "demo", "--no-full", "--no-share-round0", "--init", "1", "--step", "1",
         "--target", "2", "--first-seed", "2", "--quiet", "--warm-start", "--data-seed", "3"])
    v = experiment.file_and_flags(a, experiment.AL_GROUPS)
    assert v == {"preset": "demo", "full": False, "share_round0": False, "init_percent": 1.0,
                 "step_percent": 1.0, "target_percent": 2.0, "first_seed": 2,
                 "warm_start": True, "data_seed": 3}
    a = train_cli.build_parser().parse_args(["--no-progress", "--no-plots", "--labels", "full",
                                             "--run", "r", "--protocol", "localization"])
    assert a.quiet and a.no_pictures and a.run == "r"
    a = evaluate.build_parser().parse_args(["--run", "r", "--split", "train"])
    assert a.split == "train"  # read as --on train
