"""The synthetic benchmark: determinism, cache, and the statistics that make AL meaningful."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
from claus.data import PRESETS, SyntheticConfig, load_dataset, synthetic_dataset
from claus.data.synthetic import CLASSES, video_plan


def _digest(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cache = tmp_path_factory.mktemp("syn")
    return synthetic_dataset("tiny", seed=3, cache_dir=cache, workers=1), cache


def test_same_seed_identical_bytes_any_worker_count(tiny, tmp_path):
    ds, cache = tiny
    other = synthetic_dataset("tiny", seed=3, cache_dir=tmp_path, workers=2)
    assert _digest(cache / "synthetic") == _digest(tmp_path / "synthetic")
    assert [v.name for v in other] == [v.name for v in ds]
    diff = synthetic_dataset("tiny", seed=4, cache_dir=tmp_path, workers=1)
    a, b = ds.read_frames(0, [0]), diff.read_frames(0, [0])
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_cache_is_reused_and_damage_regenerates(tiny, monkeypatch):
    ds, cache = tiny
    import claus.data.synthetic as syn

    def boom(*a, **k):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(syn, "_render_to", boom)
    again = synthetic_dataset("tiny", seed=3, cache_dir=cache)
    assert again.summary() == ds.summary()
    monkeypatch.undo()
    folder = next((cache / "synthetic").iterdir())
    (folder / "dataset.json").write_text("{broken")
    fixed = synthetic_dataset("tiny", seed=3, cache_dir=cache, workers=1)
    assert fixed.summary() == ds.summary()


def test_tiny_contents(tiny):
    ds, _ = tiny
    assert ds.name == "synthetic:tiny" and ds.classes == CLASSES[:4]
    S = PRESETS["tiny"].size
    for i, v in enumerate(ds):
        fr = ds.read_frames(i, [0, v.num_frames - 1])
        assert fr.shape == (2, S, S, 3) and fr.dtype == np.uint8
        assert 1 <= len(v.tubes) <= 2 and all(t.label == v.label for t in v.tubes)
        for t in v.tubes:
            assert (t.boxes[:, 0] >= 0).all() and (t.boxes[:, 2] <= S).all()
            assert (t.boxes[:, 2] - t.boxes[:, 0] > 2).all()  # a visible actor, not a sliver
    # Splits are by group: no scene is in both.
    groups = {s: {v.group for v in ds if v.split == s} for s in ("train", "test")}
    assert not groups["train"] & groups["test"]
    # Every class has training and test videos.
    assert (ds.class_counts("train") > 0).all() and (ds.class_counts("test") > 0).all()


def test_actor_moves_in_box_and_distractors_do_not(tmp_path):
    # Pixel change inside the GT box during the action exceeds the change elsewhere: the
    # actor is what moves (distractors only drift slowly).
    ds = synthetic_dataset(
        "tiny", seed=0, cache_dir=tmp_path, workers=1, noise=(0.0, 0.0), jitter=0.0
    )
    inside, outside = [], []
    for i, v in enumerate(ds):
        t = max(v.tubes, key=len)
        f = np.arange(t.start, t.end - 1)
        fr = ds.read_frames(i, np.arange(t.start, t.end)).astype(np.float32)
        d = np.abs(np.diff(fr, axis=0)).sum(-1)  # (n-1, S, S)
        m = np.zeros(d.shape, bool)
        for k, ff in enumerate(f):
            x1, y1, x2, y2 = np.round(t.boxes[ff - t.start]).astype(int)
            m[k, y1:y2, x1:x2] = True
        inside.append(d[m].mean())
        outside.append(d[~m].mean())
    assert np.median(inside) > 4 * np.median(outside)


def test_demo_statistics_from_plan():
    cfg = PRESETS["demo"]
    plan = video_plan(cfg, seed=0)
    sizes = [g.size for g in plan]
    assert sum(sizes) == cfg.num_videos
    # Near-duplicates everywhere: most videos have a look-alike in their group.
    assert sum(s for s in sizes if s > 1) > 0.8 * cfg.num_videos
    per_class = Counter()
    for g in plan:
        per_class[g.label] += g.size
    counts = np.array([per_class[k] for k in range(cfg.num_classes)])
    assert counts.max() >= 2.5 * counts.min()  # imbalanced
    test = sum(g.size for g in plan if g.split == "test") / cfg.num_videos
    assert abs(test - cfg.test_fraction) < 0.1
    assert plan == video_plan(cfg, seed=0) and plan != video_plan(cfg, seed=1)


def test_video_statistics_on_a_small_demo_like_set(tmp_path):
    # A reduced demo (same sizes and difficulty, fewer videos) to check per-video statistics.
    ds = synthetic_dataset(
        "demo",
        seed=0,
        cache_dir=tmp_path,
        workers=1,
        num_videos=48,
        num_classes=4,
        two_actor_prob=0.5,
    )
    lens = np.array([v.num_frames for v in ds])
    assert lens.min() >= 24 and lens.max() <= 96 and lens.std() > 8
    cover = [sum(len(t) for t in v.tubes) / (len(v.tubes) * v.num_frames) for v in ds]
    assert min(cover) < 0.9 and max(cover) == 1.0  # partial and full-length actions
    assert any(len(v.tubes) == 2 for v in ds)
    # Near-duplicates: videos of one group look alike (same scene), other groups do not.
    by_group: dict[str, list[int]] = {}
    for i, v in enumerate(ds):
        by_group.setdefault(v.group, []).append(i)
    first = [ds.read_frames(i, [0])[0].astype(np.float32) for i in range(len(ds))]
    same, other = [], []
    for idx in by_group.values():
        if len(idx) > 1:
            same.append(np.abs(first[idx[0]] - first[idx[1]]).mean())
    keys = list(by_group)
    for a, b in zip(keys, keys[1:], strict=False):
        other.append(np.abs(first[by_group[a][0]] - first[by_group[b][0]]).mean())
    assert np.median(same) < 0.5 * np.median(other)


def test_bad_config_and_preset(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic preset 'huge'"):
        synthetic_dataset("huge", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticConfig(num_classes=40)
    with pytest.raises(ValueError, match="too few"):
        SyntheticConfig(num_videos=4)
    ds = load_dataset("synthetic:tiny", cache_dir=tmp_path)
    assert ds.name == "synthetic:tiny"


def _gen_summary(cache):
    return synthetic_dataset("tiny", seed=9, cache_dir=cache, workers=1).summary()


def test_concurrent_first_use_generates_once(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as ex:
        a, b = ex.map(_gen_summary, [tmp_path, tmp_path])
    assert a == b
    folder = next((tmp_path / "synthetic").iterdir())
    assert not list(folder.rglob("*.tmp"))
    assert len(list((folder / "frames").glob("*.npy"))) == a["videos"]
