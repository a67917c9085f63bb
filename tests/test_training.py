"""Training loop, evaluation glue and the train / evaluate command lines, on synthetic:tiny."""

from __future__ import annotations

import copy
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from claus.data import LabelState, TrainClips, load_dataset
from claus.eval import pipeline
from claus.eval.inference import VideoPrediction
from claus.losses import bce_dice_loss, stew_loss
from claus.models import build_model
from claus.training import (
    NonFiniteLossError,
    TrainConfig,
    compute_losses,
    evaluate,
    fit,
    load_checkpoint,
    read_metrics,
)

# A small, fast configuration: every test trains for seconds.
TINY = dict(epochs=1, batch_size=8, lr=3e-3, clips_per_video=2, min_clips_per_epoch=0, T=8,
            stride=2, eval_batch_size=16)


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("synthetic:tiny")


@pytest.fixture(scope="module")
def full_labels(tiny):
    return LabelState.full(tiny)


@pytest.fixture(scope="module")
def trained(tiny, full_labels, tmp_path_factory):
    """One 2-epoch run shared by the evaluation tests."""
    run = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(**{**TINY, "epochs": 2})
    model = fit(cfg, tiny, full_labels, run, progress=False)
    return cfg, model, run


def _fixed_batch_loss(cfg, model, ds, labels) -> float:
    """Training loss on a fixed set of un-augmented clips with fixed dropout masks.

    Training mode (batch statistics in BatchNorm): after a handful of steps the running
    statistics still lag far behind the weights, which is not what this test is about."""
    clips = TrainClips(ds, labels, T=cfg.T, stride=cfg.stride, augment=False, seed=123)
    batch = torch.utils.data.default_collate([clips[i] for i in range(len(clips))])
    model = copy.deepcopy(model).train()
    with torch.no_grad():
        out = model(batch["clip"], generator=torch.Generator().manual_seed(0))
        return float(compute_losses(cfg, out, batch)["loss"])


# --------------------------------------------------------------------------- config
def test_config_from_dict_converts_and_rejects():
    cfg = TrainConfig.from_dict({"lr": "1e-3", "size": "none", "amp": "false", "epochs": 3.0})
    assert cfg.lr == 1e-3 and cfg.size is None and cfg.amp is False and cfg.epochs == 3
    with pytest.raises(ValueError, match="unknown training field.*lrr"):
        TrainConfig.from_dict({"lrr": 1}, source="x.yaml")
    with pytest.raises(ValueError, match="x.yaml: field epochs expects int"):
        TrainConfig.from_dict({"epochs": "two"}, source="x.yaml")
    with pytest.raises(ValueError, match="TrainConfig.loc_loss"):
        TrainConfig(loc_loss="dice")
    with pytest.raises(ValueError, match="TrainConfig.epochs"):
        TrainConfig(epochs=0)


def test_bce_dice_equals_stew_with_every_frame_labelled():
    # With every frame labelled all STeW pixel weights are 1: the two losses coincide.
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 6, 9, 7, generator=g, dtype=torch.float64)
    y = torch.rand(3, 6, 9, 7, generator=g) > 0.6
    a = torch.ones(3, 6, dtype=torch.bool)
    torch.testing.assert_close(bce_dice_loss(z, y), stew_loss(z, y, a))
    # ... and differ once some frames are interpolated.
    a[:, 1:4] = False
    assert not torch.allclose(bce_dice_loss(z, y), stew_loss(z, y, a))


# --------------------------------------------------------------------------- fit
def test_one_epoch_lowers_the_loss(tiny, full_labels, tmp_path):
    cfg = TrainConfig(**{**TINY, "clips_per_video": 4})
    torch.manual_seed(cfg.seed)
    before_model = build_model(cfg.model, tiny.num_classes)
    before = _fixed_batch_loss(cfg, before_model, tiny, full_labels)
    model = fit(cfg, tiny, full_labels, tmp_path, progress=False)
    after = _fixed_batch_loss(cfg, model, tiny, full_labels)
    assert after < 0.9 * before, (before, after)
    rec = read_metrics(tmp_path / "metrics.jsonl")
    assert len(rec) == 1 and rec[0]["epoch"] == 0 and rec[0]["skipped"] == 0
    assert {"loss", "cls", "loc", "lr", "seconds"} <= set(rec[0])
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and ckpt["step"] == rec[0]["step"] > 0


def test_resume_is_bit_identical(tiny, full_labels, tmp_path):
    cfg = TrainConfig(**{**TINY, "epochs": 2})
    straight = fit(cfg, tiny, full_labels, tmp_path / "a", progress=False)

    class Interrupt(Exception):
        pass

    def stop(epoch, record):
        if epoch == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(cfg, tiny, full_labels, tmp_path / "b", progress=False, on_epoch_end=stop)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    # Disturb the global RNG: the resumed run must restore everything it depends on.
    torch.manual_seed(999)
    resumed = fit(cfg, tiny, full_labels, tmp_path / "b", progress=False)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra, rb = (read_metrics(tmp_path / d / "metrics.jsonl") for d in "ab")
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in ra]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in rb]
    # A finished run returns at once; a checkpoint of another config is refused.
    again = fit(cfg, tiny, full_labels, tmp_path / "b", progress=False)
    assert all(torch.equal(again.state_dict()[k], b[k]) for k in b)
    with pytest.raises(ValueError, match=r"another run .*config\.lr"):
        fit(cfg.replace(lr=1e-2), tiny, full_labels, tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="labels"):
        fit(cfg, tiny, LabelState.random(tiny, 10, seed=0), tmp_path / "b", progress=False)


def test_nonfinite_loss_skips_then_aborts(tiny, full_labels, tmp_path):
    cfg = TrainConfig(**{**TINY, "max_nonfinite": 2})
    torch.manual_seed(0)
    model = build_model(cfg.model, tiny.num_classes)
    calls = {"n": 0}
    forward = model.forward

    def flaky(clip, generator=None):
        calls["n"] += 1
        out = forward(clip, generator=generator)
        if calls["n"] == 2:  # a single bad step: skipped with a warning, training goes on
            return type(out)(out.loc * float("nan"), out.cls, out.emb)
        return out

    model.forward = flaky
    with pytest.warns(RuntimeWarning, match="non-finite loss.*step skipped"):
        fit(cfg, tiny, full_labels, tmp_path / "a", model=model, progress=False)
    assert read_metrics(tmp_path / "a" / "metrics.jsonl")[0]["skipped"] == 1

    bad = build_model(cfg.model, tiny.num_classes)
    with torch.no_grad():
        bad.heads.loc_out.weight.fill_(float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(NonFiniteLossError, match="2 consecutive steps.*no checkpoint was "
                           "written yet"):
            fit(cfg, tiny, full_labels, tmp_path / "b", model=bad, progress=False)


def test_loc_loss_ablation_trains(tiny, tmp_path):
    cfg = TrainConfig(**{**TINY, "loc_loss": "bce_dice"})
    labels = LabelState.random(tiny, 20, seed=0)
    fit(cfg, tiny, labels, tmp_path, progress=False)
    rec = read_metrics(tmp_path / "metrics.jsonl")[0]
    assert math.isfinite(rec["loss"]) and rec["loc"] > 0


# --------------------------------------------------------------------------- DDP
def _ddp_worker(rank: int, world: int, folder: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/pg", rank=rank,
                            world_size=world)
    try:
        ds = load_dataset("synthetic:tiny")
        cfg = TrainConfig(**TINY)
        model = fit(cfg, ds, LabelState.full(ds), Path(folder) / "run", progress=False)
        torch.save({k: v.clone() for k, v in model.state_dict().items()},
                   Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_ddp_two_processes_gloo(tmp_path):
    load_dataset("synthetic:tiny")  # generate the cache once, before the ranks race for it
    torch.multiprocessing.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in a:  # DDP keeps the replicas identical
        assert torch.equal(a[k], b[k]), k
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and len(ckpt["rng"]) == 2
    for k in a:
        assert torch.equal(ckpt["model"][k], a[k]), k
    rec = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(rec) == 1 and math.isfinite(rec[0]["loss"])
    # Each rank saw half the clips: the global step count is that of one shard.
    ds = load_dataset("synthetic:tiny")
    n = len(LabelState.full(ds).labelled_videos()) * TINY["clips_per_video"]
    assert rec[0]["step"] == math.ceil(math.ceil(n / 2) / TINY["batch_size"])


# --------------------------------------------------------------------------- evaluation
def _oracle(ds, indices, **kw):
    """Perfect per-frame predictions: ground-truth boxes as foreground, the true class."""
    for vi in indices:
        v = ds[vi]
        fg = np.zeros((v.num_frames, v.height, v.width), np.float32)
        for t in v.tubes:
            for f, b in zip(range(t.start, t.end), t.boxes, strict=True):
                x1, y1, x2, y2 = np.rint(b).astype(int)
                fg[f, y1:y2, x1:x2] = 1.0
        cls = np.full((v.num_frames, ds.num_classes), 0.01, np.float32)
        cls[:, v.label] = 1.0
        yield vi, VideoPrediction(fg, cls, np.ones(v.num_frames, bool))


def test_evaluation_of_perfect_and_empty_predictions(tiny, monkeypatch):
    monkeypatch.setattr(pipeline, "predict_videos", lambda model, ds, idx, **kw: _oracle(ds, idx))
    res = pipeline.evaluate_split(None, tiny, "test")
    # Two actors can touch and merge into one region, and boxes are rounded to pixels: nearly,
    # not exactly, perfect.
    assert res["f-mAP@0.5"] > 90 and res["v-mAP@0.5"] > 90 and res["v-mAP@0.1"] > 90
    assert res["accuracy"] == 100.0
    loc = pipeline.evaluate_split(None, tiny, "test", protocol="localization")
    assert loc["f-mAP@0.5"] > 90 and loc["v-mAP@0.5"] > 90

    def empty(model, ds, idx, **kw):
        for vi, p in _oracle(ds, idx):
            yield vi, VideoPrediction(np.zeros_like(p.fg), p.cls, p.covered)

    monkeypatch.setattr(pipeline, "predict_videos", empty)
    res = pipeline.evaluate_split(None, tiny, "test")
    assert res["f-mAP@0.5"] == 0 and res["v-mAP@0.5"] == 0 and res["accuracy"] == 100.0
    with pytest.raises(ValueError, match="protocol"):
        pipeline.evaluate_split(None, tiny, "test", protocol="voc")


def test_predict_videos_covers_every_frame_once(tiny, trained):
    cfg, model, _ = trained
    idx = tiny.split_indices("test")[:3]
    got = dict(pipeline.predict_videos(model, tiny, idx, T=cfg.T, stride=cfg.stride,
                                       batch_size=5))
    assert list(got) == idx
    for vi, p in got.items():
        v = tiny[vi]
        assert p.fg.shape == (v.num_frames, v.height, v.width) and p.covered.all()
        assert np.all((p.fg >= 0) & (p.fg <= 1))
        np.testing.assert_allclose(p.cls.sum(1), 1, rtol=1e-5)


def test_end_to_end_evaluation_of_a_tiny_run(tiny, trained):
    cfg, model, run = trained
    res = evaluate(model, tiny, cfg, "test", progress=False)
    for k in ("f-mAP@0.5", "v-mAP@0.1", "v-mAP@0.2", "v-mAP@0.3", "v-mAP@0.5",
              "v-mAP@0.5:0.95", "accuracy"):
        assert res[k] is not None and 0 <= res[k] <= 100, k
    assert res["v-mAP@0.1"] >= res["v-mAP@0.5"] >= res["v-mAP@0.5:0.95"]
    assert res["videos"] == len(tiny.split_indices("test"))
    # (Two epochs are too few to detect much: the oracle test above checks that good
    # predictions score high; this one checks the whole path runs and is deterministic.)
    json.dumps(res, allow_nan=False)
    assert evaluate(model, tiny, cfg, "test", progress=False)["f-mAP@0.5"] == res["f-mAP@0.5"]
    loc = evaluate(model, tiny, cfg, "test", protocol="localization", progress=False)
    assert loc["protocol"] == "localization" and 0 <= loc["f-mAP@0.5"] <= 100


def test_pictures(tiny, trained, tmp_path, monkeypatch):
    from claus import plots
    from PIL import Image

    cfg, model, run = trained
    p = plots.detection_strip(model, tiny, tmp_path / "strip.png", num_frames=4)
    img = np.asarray(Image.open(p).convert("RGB"))
    assert img.shape[0] >= 160
    red = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert red.any()  # ground-truth boxes drawn
    records = read_metrics(run / "metrics.jsonl")
    if plots.training_curves(records, tmp_path / "curves.png") is not None:
        assert Image.open(tmp_path / "curves.png").size[0] > 300
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert plots.training_curves(records, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


# --------------------------------------------------------------------------- command lines
def test_train_and_evaluate_cli(tmp_path, capsys):
    from claus import evaluate as evaluate_cli
    from claus import train as train_cli

    run = tmp_path / "run"
    argv = ["--dataset", "synthetic:tiny", "--budget", "50", "--epochs", "1",
            "--min-clips-per-epoch", "0", "--batch-size", "8", "--eval-batch-size", "16",
            "--run", str(run), "--no-progress"]
    assert train_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "f-mAP@0.5" in out and "v-mAP@0.5" in out and "accuracy" in out
    for name in ("config.yaml", "labels.json", "checkpoint.pt", "metrics.jsonl",
                 "results.json", "detections.png"):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    labels = LabelState.load(run / "labels.json")
    assert 0 < labels.spent() < LabelState.full(load_dataset("synthetic:tiny")).spent()
    # Re-evaluation gives the same numbers.
    assert evaluate_cli.main(["--run", str(run), "--no-progress", "--no-write"]) == 0
    again = capsys.readouterr().out
    assert f"{results['f-mAP@0.5']:.1f}" in again
    # A finished run resumes to the same result; a fresh run into it is refused.
    assert train_cli.main(["--resume", str(run), "--no-progress", "--no-plots"]) == 0
    assert json.loads((run / "results.json").read_text())["f-mAP@0.5"] == results["f-mAP@0.5"]
    assert train_cli.main(argv) == 2
    assert "already holds a training run" in capsys.readouterr().err


def test_cli_config_file_and_overrides(tmp_path):
    from claus import train as train_cli

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("dataset: synthetic:tiny\nlr: 0.01\nbatch_size: 4\nbudget: 5\n")
    args = train_cli.build_parser().parse_args(["--config", str(cfg_file), "--lr", "0.002",
                                                "--labels", "full"])
    spec, cfg, _ = train_cli.config_from_args(args)
    assert cfg.lr == 0.002 and cfg.batch_size == 4  # flag beats file, file beats default
    assert spec.data.name == "synthetic" and spec.data.preset == "tiny"
    assert spec.labels == "full" and spec.budget is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*learning_rate"):
        train_cli.config_from_args(train_cli.build_parser().parse_args(["--config", str(bad)]))


def test_cli_help_and_bad_names(capsys, tmp_path):
    from claus import evaluate as evaluate_cli
    from claus import train as train_cli

    with pytest.raises(SystemExit) as e:
        train_cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dataset", "--labels", "--budget", "--model", "--weights", "--epochs",
                 "--config", "--run", "--resume", "--lr", "--batch-size", "--loc-loss",
                 "--beta", "--warmup-epochs", "--grad-clip"):
        assert flag in text, flag
    with pytest.raises(SystemExit) as e:
        evaluate_cli.main(["--help"])
    assert e.value.code == 0 and "--run" in capsys.readouterr().out
    assert train_cli.main(["--dataset", "kinetics", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'kinetics'" in err and "ucf101-24" in err
    assert err.startswith("error: --dataset: ") and err.count("\n") == 1
    assert train_cli.main(["--model", "resnet", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet'" in err and "i3d" in err
    assert train_cli.main(["--dataset", "synthetic:tiny", "--weights", "/no/such.pt",
                           "--run", str(tmp_path / "w"), "--no-progress"]) == 2
    assert "/no/such.pt" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # refused before anything was written


def test_cluster_loss_with_online_centres(tiny, full_labels, tmp_path):
    from claus.cluster import OnlineCenters

    cfg = TrainConfig(**{**TINY, "beta": 0.1})
    with pytest.raises(ValueError, match="beta > 0 needs cluster centres"):
        fit(cfg, tiny, full_labels, tmp_path / "none", progress=False)
    init = torch.randn(3, 128, generator=torch.Generator().manual_seed(0))
    centers = OnlineCenters(init.clone(), initial_count=10.0)
    fit(cfg, tiny, full_labels, tmp_path / "a", centers=centers, progress=False)
    rec = read_metrics(tmp_path / "a" / "metrics.jsonl")[0]
    assert rec["cluster"] > 0 and math.isfinite(rec["loss"])
    n = len(full_labels.labelled_videos()) * TINY["clips_per_video"]
    # Every training clip's embedding was absorbed into one centre, which moved.
    assert float(centers.counts.sum()) == pytest.approx(30.0 + n)
    assert not torch.equal(centers.centers, init)
    ckpt = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    assert torch.equal(ckpt["centers"]["centers"], centers.centers)
    # A plain (K,D) tensor is accepted as the initial centres.
    fit(cfg, tiny, full_labels, tmp_path / "b", centers=init, progress=False)
