"""The options that make the tiny detector learn the demo: motion input, avg+max pooling,
colour augmentation, action-only classification loss, a floor on clips per epoch, per-dataset
training defaults and actor contrast in the synthetic benchmark."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from claus.data import LabelState, TrainClips, synthetic_dataset, train_defaults
from claus.data.synthetic import PRESETS, generate_video, video_plan
from claus.models import TinyBackbone, build_model
from claus.models.detector import DetectorOutput
from claus.training import TrainConfig, compute_losses


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthetic_dataset("tiny", seed=3, cache_dir=tmp_path_factory.mktemp("syn"), workers=1)


def test_motion_channels_see_frame_differences():
    torch.manual_seed(0)
    still = TinyBackbone((8, 8, 8, 8), motion=True).eval()
    frame = torch.rand(1, 3, 1, 16, 16).expand(1, 3, 6, 16, 16).contiguous()
    moving = frame.clone()
    moving[:, :, 3:] = moving[:, :, 3:].roll(2, dims=-1)
    # The stem's weights on the difference channels alone: zero the RGB ones, so the output
    # depends on motion only.
    conv = still.stem[0]
    with torch.no_grad():
        w = conv.weight.view(8, 6, 4, 1, 3, 3)
        w[:, :3] = 0
    a = still(frame)[0]
    b = still(moving)[0]
    assert torch.allclose(a[:, :, 0], b[:, :, 0])  # first frames: no difference anywhere
    assert not torch.allclose(a[:, :, 3], b[:, :, 3])  # the shift shows up where it happens
    # Without motion the stem has 3·4 input channels and a static clip is all it sees.
    assert TinyBackbone((8, 8, 8, 8), motion=False).stem[0].in_channels == 12
    assert conv.in_channels == 24


def test_avgmax_pooling_shapes_and_bad_value():
    torch.manual_seed(0)
    m = build_model("tiny", num_classes=4, pool="avgmax")
    out = m(torch.rand(2, 3, 8, 32, 32))
    assert out.cls.shape == (2, 4) and out.emb.shape == (2, 128)
    assert m.heads.cls_hidden.in_features == 2 * m.heads.in_channels[-1]
    avg = build_model("tiny", num_classes=4, pool="avg")
    assert avg.heads.cls_hidden.in_features == avg.heads.in_channels[-1]
    with pytest.raises(ValueError, match="pool"):
        build_model("tiny", num_classes=4, pool="median")


def test_actor_pooling_reads_where_the_actor_is():
    import torch.nn.functional as F
    from claus.models import normalize_clip

    torch.manual_seed(0)
    m = build_model("tiny", num_classes=4, pool="actor")
    top_c = m.heads.in_channels[-1]
    assert m.heads.cls_hidden.in_features == 3 * top_c
    clip = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():  # a mask that varies over the clip, as a trained one does
        m.heads.loc_out.weight.normal_(0, 5.0)
    feats = m.backbone(normalize_clip(clip))
    inputs = m.heads.prepare(feats, (8, 32, 32))
    top = feats[-1]
    fg = torch.sigmoid(m.heads.loc_out(inputs.hidden)).mean(1, keepdim=True)
    assert fg.std() > 0.05
    w = F.adaptive_avg_pool3d(fg, top.shape[2:])
    want = (top * w).sum((2, 3, 4)) / w.sum((2, 3, 4))
    avg = top.mean((2, 3, 4))
    assert torch.allclose(inputs.pooled[:, :top_c], avg, atol=1e-5)
    assert torch.allclose(inputs.pooled[:, 2 * top_c:], want, atol=1e-5)
    assert not torch.allclose(want, avg, atol=1e-3)
    # ...but the classification loss sends no gradient through the mask into that head.
    m.zero_grad()
    m(clip).cls.sum().backward()
    assert m.heads.loc_out.weight.grad is None or m.heads.loc_out.weight.grad.abs().sum() == 0
    assert m.heads.cls_hidden.weight.grad.abs().sum() > 0


def test_colour_augmentation_changes_pixels_not_masks(tiny):
    labels = LabelState.full(tiny)
    base = TrainClips(tiny, labels, T=4, stride=2, seed=5)
    aug = TrainClips(tiny, labels, T=4, stride=2, seed=5, color_jitter=0.3, channel_shuffle=True)
    diff = 0
    for i in range(6):
        a, b = base[i], aug[i]
        assert torch.equal(a["mask"], b["mask"]) and torch.equal(a["frames"], b["frames"])
        assert b["clip"].min() >= 0 and b["clip"].max() <= 1
        diff += int(not torch.allclose(a["clip"], b["clip"]))
    assert diff == 6
    again = TrainClips(tiny, labels, T=4, stride=2, seed=5, color_jitter=0.3, channel_shuffle=True)
    assert torch.equal(aug[2]["clip"], again[2]["clip"])  # seeded
    # Shuffle alone (no jitter) only reorders channels: the sorted values per pixel agree.
    sh = TrainClips(tiny, labels, T=4, stride=2, seed=5, channel_shuffle=True)
    seen_perm = False
    for i in range(8):
        a, b = base[i]["clip"], sh[i]["clip"]
        assert torch.equal(a.sort(dim=0).values, b.sort(dim=0).values)
        seen_perm |= not torch.equal(a, b)
    assert seen_perm
    with pytest.raises(ValueError, match="color_jitter"):
        TrainClips(tiny, labels, color_jitter=1.5)


def test_classification_loss_only_on_clips_showing_an_actor():
    torch.manual_seed(0)
    B, T, H, W, C = 4, 4, 8, 8, 3
    logits = torch.randn(B, C)
    label = torch.tensor([0, 1, 2, 1])
    mask = torch.zeros(B, T, H, W, dtype=torch.uint8)
    mask[0, 1, 2:4, 2:4] = 1
    mask[2, 0, 0, 0] = 1
    out = DetectorOutput(torch.zeros(B, T, H, W), logits, torch.zeros(B, 8))
    batch = {"mask": mask, "annotated": torch.ones(B, T, dtype=torch.bool), "label": label}
    on = compute_losses(TrainConfig(cls_on_action=True), out, batch)["cls"]
    off = compute_losses(TrainConfig(cls_on_action=False), out, batch)["cls"]
    keep = torch.tensor([0, 2])
    assert torch.allclose(on, F.cross_entropy(logits[keep], label[keep]))
    assert torch.allclose(off, F.cross_entropy(logits, label))
    # No clip with an actor: zero classification loss, not NaN.
    empty = {**batch, "mask": torch.zeros_like(mask)}
    assert compute_losses(TrainConfig(cls_on_action=True), out, empty)["cls"].item() == 0.0


def test_min_clips_per_epoch_raises_clips_per_video(tiny, tmp_path, monkeypatch):
    from claus import training

    sizes = []
    real = training.TrainClips

    def spy(*args, **kwargs):
        clips = real(*args, **kwargs)
        sizes.append(len(clips))
        raise RuntimeError("stop")  # only the loader size matters here

    monkeypatch.setattr(training, "TrainClips", spy)
    videos = [v.name for v in tiny if v.split == "train"][:3]
    labels = LabelState.empty(tiny)
    for name in videos:
        labels.reveal(tiny, name, [0], round=0)
    for floor, expect in ((0, 3 * 2), (40, 3 * 14)):
        cfg = TrainConfig(epochs=1, clips_per_video=2, min_clips_per_epoch=floor)
        with pytest.raises(RuntimeError, match="stop"):
            training.fit(cfg, tiny, labels, tmp_path / f"r{floor}", progress=False)
        assert sizes[-1] == expect
    with pytest.raises(ValueError, match="min_clips_per_epoch"):
        TrainConfig(min_clips_per_epoch=-1)


def test_dataset_training_defaults_sit_below_flags():
    from claus.train import build_parser, config_from_args

    assert train_defaults("synthetic:demo") == {"channel_shuffle": True}
    assert train_defaults("custom") == {}
    parse = build_parser().parse_args
    _, cfg, _ = config_from_args(parse(["--dataset", "synthetic:tiny"]))
    assert cfg.channel_shuffle is True
    _, cfg, _ = config_from_args(parse(["--dataset", "synthetic:tiny", "--channel-shuffle",
                                        "false"]))
    assert cfg.channel_shuffle is False
    _, cfg, _ = config_from_args(parse(["--dataset", "custom", "--root", "x.json"]))
    assert cfg.channel_shuffle is False
    assert isinstance(parse([]), argparse.Namespace)


def test_min_contrast_keeps_bodies_away_from_the_scene_colour():
    from dataclasses import replace

    from claus.data.synthetic import _palette

    colors = np.random.default_rng(0).uniform(20, 235, (10, 3))
    scene = colors[3] + 5.0  # one pool colour nearly matches the scene
    gap = np.linalg.norm(colors - scene, axis=1)
    rng = np.random.default_rng(1)
    bodies = np.array([_palette(rng, colors, scene, 100.0)[0] for _ in range(200)])
    # Body = a qualifying pool colour + small noise (std 8 per channel, clipped).
    nearest = np.linalg.norm(bodies[:, None] - colors[None], axis=2).argmin(1)
    assert (gap[nearest] >= 100).all()
    assert len(set(nearest.tolist())) == int((gap >= 100).sum())  # every qualifying one used
    anyc = np.array([_palette(rng, colors, scene, 0.0)[0] for _ in range(400)])
    assert 3 in set(np.linalg.norm(anyc[:, None] - colors[None], axis=2).argmin(1).tolist())
    # No colour far enough: the farthest one.
    far = np.array([_palette(rng, colors, scene, 1e9)[0] for _ in range(20)])
    assert set(np.linalg.norm(far[:, None] - colors[None], axis=2).argmin(1).tolist()) == {
        int(gap.argmax())}
    # With min_contrast 0 the generator's output is unchanged (same draws).
    cfg = PRESETS["tiny"]
    plan = video_plan(cfg, 0)
    assert np.array_equal(generate_video(replace(cfg, min_contrast=0.0), 0, plan[0], 0)[0],
                          generate_video(cfg, 0, plan[0], 0)[0])


@pytest.mark.parametrize("k", [0, 1, 2])
def test_temporal_smoothing_of_foreground(k):
    from claus.eval.pipeline import temporal_smooth

    fg = np.random.default_rng(k).random((7, 3, 4)).astype(np.float32)
    out = temporal_smooth(fg, k)
    for f in range(7):
        # Edges repeat the first / last frame.
        rows = [min(max(j, 0), 6) for j in range(f - k, f + k + 1)]
        assert np.allclose(out[f], fg[rows].mean(0), atol=1e-6), f
    # A one-frame dropout inside a track no longer breaks it at threshold 0.5.
    track = np.ones((9, 2, 2), np.float32)
    track[4] = 0
    assert (temporal_smooth(track, 1)[4] >= 0.5).all()
    with pytest.raises(ValueError, match="smooth"):
        temporal_smooth(fg, -1)


def test_synthetic_class_subset(tmp_path):
    from dataclasses import replace

    names = ("jump", "walk", "circle", "crouch")
    ds = synthetic_dataset("tiny", seed=0, cache_dir=tmp_path, workers=1, classes=names)
    assert list(ds.classes) == list(names)
    for v in ds:
        assert v.name.split("/")[0] == names[v.label]
    # The same label draws a different motion under another class list.
    cfg = PRESETS["tiny"]
    g = next(g for g in video_plan(cfg, 0) if g.label == 0)
    a = generate_video(cfg, 0, g, 0)  # label 0 = "walk"
    b = generate_video(replace(cfg, classes=names), 0, g, 0)  # label 0 = "jump"
    assert not np.array_equal(a[0], b[0])
    for bad, match in (((*names[:3], "fly"), "distinct names"),
                       (("jump", "jump", "walk", "run"), "distinct names"),
                       (names[:3], "num_classes")):
        with pytest.raises(ValueError, match=match):
            replace(cfg, classes=bad)


def test_round_training_options():
    from claus.config import CLAUS_BETA, RunConfig
    from claus.training import TrainConfig

    claus = RunConfig(strategy="claus", seed=4).training()
    assert claus == TrainConfig(channel_shuffle=True, seed=4, beta=CLAUS_BETA)
    assert RunConfig(strategy="claus", beta=0.0).training().beta == 0.0
    assert RunConfig(strategy="claus", train={"beta": 0.2}).training().beta == 0.2
    # uncertainty = claus without clusters: never a cluster loss, even when asked.
    assert RunConfig(strategy="uncertainty", beta=0.5).training().beta == 0.0
    # The dataset's defaults apply to a mapping of overrides, only to synthetic data.
    real = RunConfig(data={"name": "custom", "root": "x.json"}, strategy="random")
    assert real.training() == TrainConfig(seed=0)
    # The run's own settings beat the dataset's; the run seed is the trainer's.
    assert RunConfig(train={"channel_shuffle": False}).training().channel_shuffle is False
    assert RunConfig(seed=7, train={"seed": 3}).training().seed == 7
    with pytest.raises(ValueError, match="epoch"):
        RunConfig(train={"epoch": 3})


def test_num_classes_override_keeps_the_preset_classes(tmp_path):
    demo = PRESETS["demo"].classes
    ds = synthetic_dataset("demo", seed=0, cache_dir=tmp_path, workers=1, num_videos=24,
                           num_classes=3, group_size=(1, 2), min_len=12, max_len=16)
    assert list(ds.classes) == list(demo[:3])


def test_video_class_scope_weights_frames_by_foreground():
    from claus.eval.inference import VideoPrediction
    from claus.eval.pipeline import DetectionSettings, detect_video, foreground_weighted_class

    # Frames 0-3: actor seen (fg 0.9), class 1 likely; frames 4-9: idle, class 0 noise.
    N = 10
    fg = np.zeros((N, 8, 8), np.float32)
    fg[:4, 2:6, 2:6] = 0.9
    cls = np.tile(np.array([0.8, 0.1, 0.1], np.float32), (N, 1))
    cls[:4] = [0.1, 0.8, 0.1]
    w = foreground_weighted_class(cls, fg)
    assert np.argmax(cls.mean(0)) == 0 and np.argmax(w) == 1
    assert np.allclose(w, [0.1, 0.8, 0.1], atol=1e-6)
    # No foreground anywhere: the plain mean.
    assert np.allclose(foreground_weighted_class(cls, np.zeros_like(fg)), cls.mean(0))
    # Frame 0 alone says class 2; with the video scope its detections take the video's class.
    cls[0] = [0.05, 0.15, 0.8]
    pred = VideoPrediction(fg=fg, cls=cls, covered=np.ones(N, bool))
    s = dict(smooth=0, top_k=1, tube_top_k=1, min_length=2)
    per_frame, _ = detect_video(pred, 8, 8, 0, DetectionSettings(**s))
    per_video, tubes = detect_video(pred, 8, 8, 0, DetectionSettings(class_scope="video", **s))
    assert per_frame[per_frame[:, 1] == 1][:, 2].tolist() == [2]
    assert set(per_video[:, 2].tolist()) == {1}
    assert list(tubes) == [1]
    with pytest.raises(ValueError, match="class_scope"):
        DetectionSettings(class_scope="clip")


def test_fresh_localization_head_passes_gradient():
    # The output layer starts at the foreground prior on average but not flat, so the
    # localization loss reaches the backbone from the first step (a near-zero layer left the
    # demo's losses on a plateau for a quarter of training).
    torch.manual_seed(0)
    m = build_model("tiny", num_classes=4)
    clip = torch.rand(2, 3, 8, 32, 32)
    loc = m(clip).loc
    p = torch.sigmoid(loc)
    assert 0.01 < p.mean().item() < 0.2 and loc.std().item() > 0.03
    m.zero_grad()
    torch.nn.functional.binary_cross_entropy_with_logits(loc, torch.ones_like(loc)).backward()
    back = m.backbone.stem[0].weight.grad.norm().item()
    head = m.heads.loc_out.weight.grad.norm().item()
    assert back > 0.02 * head  # 0.005 with the old std-0.01 layer
