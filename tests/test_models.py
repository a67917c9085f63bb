"""Detectors: output shapes, MC dropout confined to the heads, weight loading."""

from __future__ import annotations

import pickle

import pytest
import torch
from claus.losses import classification_loss
from claus.models import I3DBackbone, build_model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)  # parameter init only; every random draw in the tests takes a generator
    return build_model("tiny", num_classes=5)


def clip(gen, b=2, t=8, h=32, w=32):
    return torch.rand(b, 3, t, h, w, generator=gen)


@pytest.mark.parametrize("shape", [(2, 3, 8, 64, 64), (1, 3, 5, 36, 44)])
def test_tiny_shapes_train_and_eval(tiny, gen, shape):
    x = torch.rand(shape, generator=gen)
    for train in (True, False):
        tiny.train(train)
        out = tiny(x, generator=gen)
        B, _, T, H, W = shape
        assert out.loc.shape == (B, T, H, W)
        assert out.cls.shape == (B, 5)
        assert out.emb.shape == (B, 128)
        assert all(torch.isfinite(o).all() for o in out)
    tiny.eval()


def test_uint8_and_float_inputs_agree(tiny, gen):
    x8 = torch.randint(0, 256, (1, 3, 8, 32, 32), generator=gen, dtype=torch.uint8)
    tiny.eval()
    with torch.no_grad():
        a = tiny(x8)
        b = tiny(x8.float() / 255)
    torch.testing.assert_close(a.loc, b.loc)


def test_i3d_shapes_and_checkpoint_names(gen):
    model = build_model("i3d", num_classes=3, emb_dim=16).eval()
    x = clip(gen, b=1, t=8, h=32, w=32)
    with torch.no_grad():
        out = model(x)
        mc = model.mc_forward(x, passes=2, generator=gen)
    assert out.loc.shape == (1, 8, 32, 32) and out.cls.shape == (1, 3)
    assert out.emb.shape == (1, 16)
    assert mc.loc.shape == (2, 1, 8, 32, 32) and mc.cls.shape == (2, 1, 3)
    # Names and shapes of pytorch-i3d's state dict (rgb_imagenet.pt), up to Mixed_4f.
    sd = model.backbone.state_dict()
    expected = {
        "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
        "Conv3d_2b_1x1.bn.running_mean": (64,),
        "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
        "Mixed_3b.b0.conv3d.weight": (64, 192, 1, 1, 1),
        "Mixed_3c.b2b.conv3d.weight": (96, 32, 3, 3, 3),
        "Mixed_4b.b1a.bn.weight": (96,),
        "Mixed_4f.b1b.conv3d.weight": (320, 160, 3, 3, 3),
        "Mixed_4f.b3b.bn.running_var": (128,),
    }
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    prefixes = {k.split(".")[0] for k in sd}
    assert prefixes == {"Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "Mixed_3b",
                        "Mixed_3c", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"}
    assert all(k.split(".")[1] in {"conv3d", "bn", "b0", "b1a", "b1b", "b2a", "b2b", "b3b"}
               for k in sd)


def test_i3d_same_padding_matches_tensorflow():
    from claus.models.i3d import MaxPool3dSame, Unit3D, _same_pad

    # TF "SAME": total padding max(k - s, 0) or max(k - size % s, 0); the odd pixel goes last.
    assert _same_pad((224,), (7,), (2,)) == [2, 3]
    assert _same_pad((7,), (3,), (2,)) == [1, 1]
    assert _same_pad((8,), (1,), (1,)) == [0, 0]
    for size in (5, 8, 9):
        x = torch.zeros(1, 3, size, size, size)
        y = Unit3D(3, 2, (7, 7, 7), (2, 2, 2))(x)
        assert y.shape[2:] == ((size + 1) // 2,) * 3
        assert MaxPool3dSame((3, 3, 3), (2, 2, 2))(x).shape[2:] == ((size + 1) // 2,) * 3


def test_mc_forward_equals_separate_head_passes(gen):
    torch.manual_seed(4)
    tiny = build_model("tiny", num_classes=5).eval()
    x = clip(gen)
    R = 4
    with torch.no_grad():
        inputs = tiny.head_inputs(x)
        masks = tiny.heads.sample_masks(inputs, R, torch.Generator().manual_seed(7))
        batched = tiny.mc_forward(x, masks=masks)
        assert batched.loc.shape == (R, 2, 8, 32, 32) and batched.cls.shape == (R, 2, 5)
        for r in range(R):
            loc, cls = tiny.heads.decode(inputs, {k: m[r : r + 1] for k, m in masks.items()})
            torch.testing.assert_close(batched.loc[r], loc[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(batched.cls[r], cls[0], rtol=1e-5, atol=1e-5)
        # A seeded generator gives those same masks through the public call.
        seeded = tiny.mc_forward(x, passes=R, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(seeded.loc, batched.loc)
        other = tiny.mc_forward(x, passes=R, generator=torch.Generator().manual_seed(8))
        det = tiny(x)
    # The passes really differ (dropout is on), the embedding does not depend on them, and the
    # deterministic pass is none of them.
    assert (batched.loc[0] - batched.loc[1]).abs().max() > 1e-4
    assert (other.loc - batched.loc).abs().max() > 1e-4
    torch.testing.assert_close(batched.emb, det.emb)
    assert (batched.cls - det.cls).abs().max() > 1e-6


def test_mc_forward_runs_backbone_once(tiny, gen):
    calls = []
    handle = tiny.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad():
            tiny.eval().mc_forward(clip(gen, b=1), passes=5, generator=gen)
    finally:
        handle.remove()
    assert len(calls) == 1


def test_dropout_only_in_heads_and_only_when_asked(tiny, gen):
    x = clip(gen, b=1)
    tiny.eval()
    with torch.no_grad():
        a, b = tiny(x), tiny(x)
    torch.testing.assert_close(a.loc, b.loc)
    assert not any(isinstance(m, torch.nn.Dropout) for m in tiny.backbone.modules())
    tiny.train()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    c, d = tiny(x, generator=g1), tiny(x, generator=g2)
    torch.testing.assert_close(c.loc, d.loc)  # training dropout is reproducible from a seed
    tiny.eval()


def test_training_step_reaches_every_parameter(gen):
    torch.manual_seed(1)
    model = build_model("tiny", num_classes=4)
    x = clip(gen)
    out = model(x, generator=gen)
    y = torch.tensor([1, 3])
    loss = classification_loss(out.cls, y) + out.loc.sigmoid().mean() + out.emb.pow(2).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_classification_loss_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([0, 2])
    expected = (-torch.log_softmax(logits, 1)[[0, 1], [0, 2]]).mean()
    torch.testing.assert_close(classification_loss(logits, y), expected)


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError, match="choices: i3d, tiny"):
        build_model("resnet", 3)
    with pytest.raises(ValueError, match="bad options"):
        build_model("tiny", 3, colour="red")


# --------------------------------------------------------------------------- weights


def fake_i3d_checkpoint(gen):
    """A state dict shaped like pytorch-i3d's rgb_imagenet.pt: all layers (also past the cut),
    no BatchNorm step counters (pre-0.4 checkpoints have none)."""
    sd = {k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
          for k, v in I3DBackbone().state_dict().items()
          if not k.endswith("num_batches_tracked")}
    sd["Mixed_5b.b0.conv3d.weight"] = torch.zeros(256, 832, 1, 1, 1)
    sd["logits.conv3d.weight"] = torch.zeros(400, 1024, 1, 1, 1)
    sd["logits.conv3d.bias"] = torch.zeros(400)
    return sd


def test_i3d_loads_pytorch_i3d_checkpoint(tmp_path, gen):
    sd = fake_i3d_checkpoint(gen)
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(sd, path)
    model = build_model("i3d", num_classes=3)
    report = model.load_weights(path)
    assert report.target == "backbone"
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.skipped) == ["Mixed_5b.b0.conv3d.weight", "logits.conv3d.bias",
                                      "logits.conv3d.weight"]
    own = model.backbone.state_dict()
    for k in ("Conv3d_1a_7x7.conv3d.weight", "Mixed_4f.b2b.bn.running_var"):
        torch.testing.assert_close(own[k], sd[k])
    # A DataParallel prefix and a partial file are reported, not fatal.
    partial = {f"module.{k}": v for k, v in sd.items() if not k.startswith("Mixed_4f")}
    partial["module.extra.weight"] = torch.zeros(1)
    torch.save(partial, path)
    report = model.load_weights(path)
    assert report.unexpected == ["extra.weight"]
    assert report.missing and all(k.startswith("Mixed_4f") for k in report.missing)


def test_detector_checkpoint_round_trip(tmp_path, gen):
    torch.manual_seed(2)
    a = build_model("tiny", num_classes=3).eval()
    torch.manual_seed(3)
    b = build_model("tiny", num_classes=3).eval()
    torch.save({"model": a.state_dict(), "epoch": 4}, tmp_path / "ckpt.pt")
    report = b.load_weights(tmp_path / "ckpt.pt")
    assert report.target == "detector" and not report.missing and not report.unexpected
    x = clip(gen, b=1)
    with torch.no_grad():
        torch.testing.assert_close(a(x).loc, b(x).loc)


def test_bad_weights_files_are_clear_errors(tmp_path, gen):
    model = build_model("tiny", num_classes=3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.load_weights(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read weights"):
        model.load_weights(tmp_path / "junk.pt")
    # A pickle that would run code is refused by weights_only loading.
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(EvilPickle(), f, protocol=2)
    with pytest.raises(ValueError, match="cannot read weights"):
        model.load_weights(tmp_path / "evil.pt")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="do not fit"):
        model.load_weights(tmp_path / "other.pt")
    sd = model.state_dict()
    sd["heads.cls_out.weight"] = torch.zeros(7, sd["heads.cls_out.weight"].shape[1])
    torch.save(sd, tmp_path / "wrong_classes.pt")
    with pytest.raises(ValueError, match="shape mismatch for heads.cls_out.weight"):
        model.load_weights(tmp_path / "wrong_classes.pt")
    # i3d weights given to tiny: nothing in common.
    torch.save(fake_i3d_checkpoint(gen), tmp_path / "i3d.pt")
    with pytest.raises(ValueError, match="do not fit"):
        model.load_weights(tmp_path / "i3d.pt")


class EvilPickle:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_predict_video_averages_clip_outputs(tiny, gen):
    from claus.eval import predict_video

    video = torch.rand(3, 10, 32, 32, generator=gen)
    starts = (0, 2)  # frames 2..7 are covered twice
    clips = [(video[None, :, s : s + 8], torch.arange(s, s + 8)[None]) for s in starts]
    tiny.train()
    pred = predict_video(tiny, clips, num_frames=10)
    assert tiny.training  # mode restored
    tiny.eval()
    with torch.no_grad():
        outs = [tiny(c) for c, _ in clips]
    fg = [torch.sigmoid(o.loc[0]) for o in outs]
    assert pred.fg.shape == (10, 32, 32) and pred.cls.shape == (10, 5)
    torch.testing.assert_close(torch.from_numpy(pred.fg[0]), fg[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(pred.fg[4]), (fg[0][4] + fg[1][2]) / 2,
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(pred.fg[9]), fg[1][7], atol=1e-5, rtol=1e-5)
    both = (torch.softmax(outs[0].cls[0], 0) + torch.softmax(outs[1].cls[0], 0)) / 2
    torch.testing.assert_close(torch.from_numpy(pred.cls[5]), both, atol=1e-5, rtol=1e-5)
    assert pred.covered.all()
