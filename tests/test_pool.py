"""Pool scoring: stitched per-frame scores, video embeddings, determinism, sharding over ranks."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from claus.data import InferenceClips, load_dataset
from claus.models import build_model
from claus.selection import select_frames
from claus.selection.pool import PoolScores, score_pool

import claus_ext


def _model(ds):
    torch.manual_seed(0)
    return build_model("tiny", ds.num_classes)


def test_scores_embeddings_and_determinism(ds):
    m = _model(ds)
    vids = ds.split_indices("train")[:3]
    a = score_pool(m, ds, vids, passes=3, batch_size=4, seed=5)
    b = score_pool(m, ds, vids, passes=3, batch_size=4, seed=5)
    c = score_pool(m, ds, vids, passes=3, batch_size=4, seed=6)
    L = max(ds[v].num_frames for v in vids)
    assert a.scores.uncertainty.shape == (3, L)
    assert torch.equal(a.scores.covered[:, :L].sum(1), torch.tensor([ds[v].num_frames
                                                                     for v in vids]))
    torch.testing.assert_close(a.scores.uncertainty, b.scores.uncertainty, equal_nan=True)
    assert not torch.allclose(a.scores.entropy, c.scores.entropy, equal_nan=True)
    # The embedding of a video is the mean of its clip embeddings.
    clips = InferenceClips(ds, [vids[1]])  # score_pool's geometry: both the default
    with torch.no_grad():
        emb = m.eval()(torch.stack([clips[i]["clip"] for i in range(len(clips))])).emb.mean(0)
    torch.testing.assert_close(a.embeddings[1], emb, rtol=1e-4, atol=1e-5)
    # Entropy of the deterministic prediction equals frame_uncertainty of one plain pass.
    d = score_pool(m, ds, [vids[0]], mode="deterministic", batch_size=64)
    first = InferenceClips(ds, [vids[0]])[0]
    with torch.no_grad():
        loc = m(first["clip"][None]).loc
    _, _, ent = claus_ext.frame_uncertainty(loc[None].contiguous())
    frames = first["frames"][first["valid"]]
    H, W = loc.shape[-2:]
    torch.testing.assert_close(d.scores.entropy[0, frames], ent[0, : len(frames)] / (H * W),
                               rtol=1e-5, atol=1e-6)
    # The saved form round-trips.
    e = PoolScores.from_state(a.to_state())
    assert e.videos == a.videos and torch.equal(e.embeddings, a.embeddings)


def test_mass_frame_score(ds):
    # Foreground bias pushed so that part of each frame is foreground (p around 0.4).
    m = _model(ds)
    with torch.no_grad():
        m.heads.loc_out.bias.fill_(-0.4)
    vids = ds.split_indices("train")[:3]
    mean = score_pool(m, ds, vids, passes=3, batch_size=4, seed=5)
    mass = score_pool(m, ds, vids, passes=3, batch_size=4, seed=5, frame_score="mass")
    inf = mean.scores.informative
    assert inf.any() and torch.equal(inf, mass.scores.informative)
    # mass = mean · fg_count / (H·W): smaller wherever part of the frame is background.
    assert bool((mass.scores.uncertainty[inf] < mean.scores.uncertainty[inf]).all())
    torch.testing.assert_close(mass.scores.entropy, mean.scores.entropy, equal_nan=True)
    with pytest.raises(ValueError, match="frame_score"):
        score_pool(m, ds, vids, frame_score="sum")


def test_bad_input(ds):
    m = _model(ds)
    with pytest.raises(ValueError, match="mode"):
        score_pool(m, ds, [0], mode="dropout")
    with pytest.raises(ValueError, match="empty"):
        score_pool(m, ds, [])
    with pytest.raises(ValueError, match="passes"):
        score_pool(m, ds, [0], passes=0)


def _worker(rank, world, port, cache, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        ds = load_dataset("synthetic", preset="tiny", cache_dir=cache)
        ps = score_pool(_model(ds), ds, ds.split_indices("train")[:4], passes=2, batch_size=3,
                        seed=1)
        if rank == 0:
            torch.save(ps.to_state(), out)
    finally:
        dist.destroy_process_group()


def test_two_ranks_same_as_one(ds, cache, tmp_path):
    one = score_pool(_model(ds), ds, ds.split_indices("train")[:4], passes=2, batch_size=3,
                     seed=1)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "two.pt"
    mp.start_processes(_worker, args=(2, port, str(cache), str(out)), nprocs=2,
                       start_method="spawn")
    two = PoolScores.from_state(torch.load(out, weights_only=True))
    # Same batches, same masks; only the thread count differs (1 per rank here), which may move
    # the convolutions' last bits, so scores match closely and the selections exactly.
    torch.testing.assert_close(one.scores.uncertainty, two.scores.uncertainty, equal_nan=True,
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(one.embeddings, two.embeddings, rtol=1e-4, atol=1e-6)
    lab = torch.zeros_like(one.scores.informative)
    assert torch.equal(select_frames(one.scores, lab, 3).frames,
                       select_frames(two.scores, lab, 3).frames)
