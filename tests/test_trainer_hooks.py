"""The trainer's hooks (order, what they see, stopping early, after_train on failure) and the
one clip geometry (its defaults come from TrainConfig; no function carries its own)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
from claus import plots, reports
from claus.data import LabelState, load_dataset
from claus.data.clips import (
    ClipGeometry,
    InferenceClips,
    TrainClips,
    clip_frames,
    default_geometry,
    resolve_geometry,
    sliding_windows,
)
from claus.eval import pipeline
from claus.selection import pool
from claus.training import (
    HookBase,
    TrainConfig,
    Trainer,
    default_hooks,
    fit,
    load_checkpoint,
    read_metrics,
)

# Four labelled videos, two clips each, four clips a batch: two steps an epoch.
SMALL = dict(epochs=3, batch_size=4, clips_per_video=2, min_clips_per_epoch=0, T=8, stride=2,
             size=32)


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("synthetic:tiny")


@pytest.fixture(scope="module")
def labels(tiny):
    st = LabelState.empty(tiny)
    for name in [v.name for v in tiny if v.split == "train"][:4]:
        st.reveal(tiny, name, [0, 5], round=0)
    return st


class Recorder(HookBase):
    """Logs every call as (name, stage, epoch, step), and what the epoch's files held then."""

    def __init__(self, name: str, log: list):
        self.name, self.log = name, log

    def _note(self, stage: str, **extra) -> None:
        t = self.trainer
        self.log.append((self.name, stage, t.epoch, t.step, extra))

    def before_train(self) -> None:
        self._note("before_train", start=self.trainer.start_epoch)

    def before_epoch(self) -> None:
        self._note("before_epoch")

    def after_step(self) -> None:
        self._note("after_step", taken=self.trainer.last.taken)

    def after_epoch(self) -> None:
        t = self.trainer
        ckpt = load_checkpoint(t.ckpt_path)
        self._note("after_epoch", record=dict(t.record), ckpt_epoch=ckpt["epoch"],
                   metrics=len(read_metrics(t.metrics_path)))

    def after_train(self) -> None:
        self._note("after_train")


class StopAfter(HookBase):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def after_epoch(self) -> None:
        if self.trainer.epoch == self.epoch:
            self.trainer.request_stop()


def test_hooks_run_in_order_and_see_steps_epochs_and_written_files(tiny, labels, tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 2})
    log: list = []
    fit(cfg, tiny, labels, tmp_path, progress=False,
        hooks=[Recorder("a", log), Recorder("b", log)])
    # Every event reaches "a" before "b" (registration order).
    assert [e[0] for e in log] == ["a", "b"] * (len(log) // 2)
    seen = [(stage, epoch, step) for name, stage, epoch, step, _ in log if name == "a"]
    assert seen == [
        ("before_train", 0, 0),
        ("before_epoch", 0, 0), ("after_step", 0, 1), ("after_step", 0, 2), ("after_epoch", 0, 2),
        ("before_epoch", 1, 2), ("after_step", 1, 3), ("after_step", 1, 4), ("after_epoch", 1, 4),
        ("after_train", 1, 4),
    ]
    ends = [x for name, stage, _, _, x in log if name == "a" and stage == "after_epoch"]
    # A user hook runs after the default ones: the epoch's record is in metrics.jsonl and the
    # checkpoint already counts the epoch.
    assert [e["ckpt_epoch"] for e in ends] == [1, 2]
    assert [e["metrics"] for e in ends] == [1, 2]
    assert [e["record"] for e in ends] == read_metrics(tmp_path / "metrics.jsonl")
    assert all(x["taken"] for name, stage, _, _, x in log if stage == "after_step")


def test_a_hook_stops_training_and_the_run_resumes_identically(tiny, labels, tmp_path):
    cfg = TrainConfig(**SMALL)
    straight = fit(cfg, tiny, labels, tmp_path / "a", progress=False)
    log: list = []
    fit(cfg, tiny, labels, tmp_path / "b", progress=False,
        hooks=[StopAfter(0), Recorder("r", log)])
    stages = [(stage, epoch) for _, stage, epoch, _, _ in log]
    assert stages[-2:] == [("after_epoch", 0), ("after_train", 0)]  # no epoch 1
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    assert len(read_metrics(tmp_path / "b" / "metrics.jsonl")) == 1
    log.clear()
    resumed = fit(cfg, tiny, labels, tmp_path / "b", progress=False, hooks=[Recorder("r", log)])
    assert log[0][1] == "before_train" and log[0][4]["start"] == 1
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert (read_metrics(tmp_path / "a" / "metrics.jsonl")[-1]["loss"]
            == read_metrics(tmp_path / "b" / "metrics.jsonl")[-1]["loss"])


def test_after_train_runs_when_a_step_fails(tiny, labels, tmp_path):
    class Boom(HookBase):
        def after_step(self) -> None:
            raise RuntimeError("boom")

    log: list = []
    trainer = Trainer(TrainConfig(**SMALL), tiny, labels, tmp_path, progress=False)
    trainer.register([Recorder("r", log), Boom()])
    trainer.start(resume=False)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    assert [e[1] for e in log] == ["before_train", "before_epoch", "after_step", "after_train"]


def test_default_hooks_follow_the_config(tiny, labels, tmp_path):
    names = lambda hooks: [type(h).__name__ for h in hooks]  # noqa: E731
    t = Trainer(TrainConfig(**SMALL, eval_every=2), tiny, labels, tmp_path, progress=False)
    assert names(default_hooks(t)) == ["CenterSync", "PeriodicEvaluation", "MetricsWriter",
                                       "Checkpointer", "TensorBoardWriter"]
    assert "PeriodicEvaluation" not in names(default_hooks(t, evaluate_every=False))
    assert names(default_hooks(t, on_epoch_end=print))[-1] == "EpochCallback"
    t = Trainer(TrainConfig(**SMALL), tiny, labels, tmp_path, progress=False)
    assert "PeriodicEvaluation" not in names(default_hooks(t))  # eval_every = 0


# ---------------------------------------------------------------------------- clip geometry
#: Every public function that cuts clips: none may carry clip defaults of its own.
CLIP_USERS = [TrainClips.__init__, InferenceClips.__init__, pipeline.predict_videos,
              pipeline.evaluate_split, pool.score_pool, plots.detection_strip,
              reports.plot_detections]


@pytest.mark.parametrize("fn", CLIP_USERS, ids=lambda f: f.__qualname__)
def test_no_clip_function_has_geometry_defaults_of_its_own(fn):
    params = inspect.signature(fn).parameters
    assert params["geometry"].default is None  # None: default_geometry(), TrainConfig's
    for name in ("T", "stride", "size"):
        if name in params:  # a field override, never a default value
            assert params[name].default is None, (fn.__qualname__, name)


def test_clip_frame_helpers_take_the_geometry_explicitly():
    for fn in (clip_frames, sliding_windows):
        params = inspect.signature(fn).parameters
        assert params["T"].default is inspect.Parameter.empty
        assert params["stride"].default is inspect.Parameter.empty


def test_the_default_geometry_is_the_training_configs(tiny):
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(ClipGeometry))
    cfg = TrainConfig()
    assert default_geometry() == cfg.geometry == ClipGeometry(cfg.T, cfg.stride, cfg.size)
    assert resolve_geometry() == cfg.geometry
    # A call given no geometry cuts clips of TrainConfig's length.
    ic = InferenceClips(tiny, [tiny.split_indices("test")[0]], size=16)
    assert ic[0]["clip"].shape[1] == cfg.T and ic.stride == cfg.stride
    assert TrainConfig(T=4, stride=3, size=32).geometry == ClipGeometry(4, 3, 32)


def test_geometry_fields_are_overridden_by_keywords_and_checked(tiny, labels):
    g = ClipGeometry(T=4, stride=1, size=32)
    assert resolve_geometry(g, stride=3) == ClipGeometry(4, 3, 32)
    assert resolve_geometry(g, size=(24, 32)).size == (24, 32)
    assert ClipGeometry(4, 1, [24, 32]).size == (24, 32)  # read back from JSON
    tc = TrainClips(tiny, labels, g, T=6, augment=False)
    assert tc[0]["clip"].shape[1:] == (6, 32, 32)
    with pytest.raises(TypeError, match="ClipGeometry"):
        TrainClips(tiny, labels, 8)  # the old positional T
    with pytest.raises(ValueError, match="T and stride"):
        ClipGeometry(T=0, stride=2, size=None)


def test_evaluate_uses_the_configs_geometry(tiny, monkeypatch):
    from claus.training import evaluation

    seen = {}

    def spy(model, ds, split, **kw):
        seen.update(kw)
        return {}

    monkeypatch.setattr(evaluation, "evaluate_split", spy)
    cfg = TrainConfig(T=4, stride=3, size=24)
    evaluation.evaluate(torch.nn.Linear(1, 1), tiny, cfg, progress=False)
    assert seen["geometry"] == ClipGeometry(4, 3, 24)
    assert not {"T", "stride", "size"} & set(seen)
