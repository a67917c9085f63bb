"""Sweep training settings on synthetic:demo (full labels): per-epoch test metrics and time.

    python bench/sweep_demo.py '{"epochs": 20, "eval_every": 5}' '{"size": 32}' ...
Each argument is a JSON dict of TrainConfig overrides, plus an optional "data" dict of
`SyntheticConfig` overrides of the demo preset; one run per argument, in order.
"""

import json
import sys
import tempfile
import time

from claus.data import LabelState
from claus.data.synthetic import synthetic_dataset
from claus.training import TrainConfig, evaluate, fit

t0 = time.time()
keys = ("f-mAP@0.5", "v-mAP@0.5", "v-mAP@0.2", "accuracy")
for arg in sys.argv[1:]:
    opts = json.loads(arg)
    ds = synthetic_dataset("demo", **opts.pop("data", {}))
    print(f"dataset {time.time() - t0:.1f} s", flush=True)
    labels = LabelState.full(ds)
    cfg = TrainConfig(**opts)
    start = time.time()

    def report(epoch, rec, start=start):
        print(f"  epoch {epoch + 1} loss {rec.get('loss', 0):.3f} cls {rec.get('cls', 0):.3f} "
              f"loc {rec.get('loc', 0):.3f} t={time.time() - start:.0f}s", flush=True)

    print("config", arg, flush=True)
    with tempfile.TemporaryDirectory() as d:
        model = fit(cfg, ds, labels, d, progress=False, on_epoch_end=report)
        for line in open(f"{d}/metrics.jsonl"):
            r = json.loads(line)
            if "split" in r:
                print("  eval epoch", r["epoch"] + 1, {k: round(r[k] or 0, 1) for k in keys})
    res = evaluate(model, ds, cfg, progress=False)
    print(f"  FINAL {time.time() - start:.0f}s", {k: round(res[k] or 0, 1) for k in keys},
          flush=True)
