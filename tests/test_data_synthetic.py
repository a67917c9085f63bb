"""The synthetic benchmark: determinism, cache, and the statistics that make AL meaningful."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from claus.data import PRESETS, SyntheticConfig, load_dataset, synthetic_dataset
from claus.data.synthetic import (
    CLASSES,
    _cache_key,
    _tail_counts,
    distractor_patterns,
    generate_video,
    video_plan,
)


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


# ---------------------------------------------------------------------------- longtail preset
def _video_digest(cfg, seed: int, group_index: int = 0, clip: int = 0) -> str:
    plan = video_plan(cfg, seed)
    frames, tubes = generate_video(cfg, seed, plan[group_index], clip)
    h = hashlib.sha256(frames.tobytes())
    for t in tubes:
        h.update(t.boxes.tobytes())
        h.update(str((t.label, t.start)).encode())
    return h.hexdigest()


def test_presets_made_before_the_later_fields_keep_keys_and_bytes():
    # Values measured before long_tail, min_test_groups and distractor motion existed: a
    # changed key would orphan every cache, a changed byte every result measured on demo.
    assert _cache_key(PRESETS["tiny"], 0) == "37ab8deb17"
    assert _cache_key(PRESETS["demo"], 0) == "98ac936cd3"
    assert _cache_key(PRESETS["demo"], 3) == "c867823ad5"
    assert _cache_key(PRESETS["full"], 0) == "d929570ae7"
    assert (
        _video_digest(PRESETS["demo"], 0)
        == "8d16806a83543eba5233bca65e3ea73610a0d4a0e16f73610ad6216835384af1"
    )
    # A later field that is set enters the key.
    assert _cache_key(replace(PRESETS["demo"], distractor_motion=0.5), 0) != "98ac936cd3"


def _split_counts(cfg, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train videos, train groups and test groups per class, each (C,) int."""
    C = cfg.num_classes
    videos, train_g, test_g = np.zeros(C, int), np.zeros(C, int), np.zeros(C, int)
    for g in video_plan(cfg, seed):
        if g.split == "train":
            videos[g.label] += g.size
            train_g[g.label] += 1
        else:
            test_g[g.label] += 1
    return videos, train_g, test_g


def test_longtail_classes_are_long_tailed():
    cfg = PRESETS["longtail"]
    videos, train_g, test_g = _split_counts(cfg, seed=0)
    # Measured (README, The synthetic benchmark): walk 131, run 77, jump 41, crouch 24, circle 8.
    assert videos.tolist() == [131, 77, 41, 24, 8]
    assert train_g.tolist() == [28, 16, 9, 5, 2] and test_g.tolist() == [12, 7, 4, 2, 2]
    for seed in range(10):  # the tail's shape is set by the config, not the draw
        videos, train_g, test_g = _split_counts(cfg, seed)
        assert videos.max() >= 10 * videos.min(), (seed, videos)
        assert (np.diff(train_g) <= 0).all() and (test_g >= cfg.min_test_groups).all()
        assert (train_g >= 1).all()
    # Group counts: shares ∝ ratio^(-k/(C-1)) rounded to the total, with a floor.
    counts = _tail_counts(87, 5, 10.0, 3)
    assert counts.tolist() == [40, 23, 13, 7, 4] and counts.sum() == 87
    assert _tail_counts(20, 5, 10.0, 3).tolist() == [6, 5, 3, 3, 3]
    assert _tail_counts(10, 2, 1.0, 2).tolist() == [5, 5]


def test_longtail_groups_have_real_sizes_and_stay_whole():
    cfg = PRESETS["longtail"]
    plan = video_plan(cfg, seed=0)
    sizes = [g.size for g in plan]
    assert sum(sizes) == cfg.num_videos
    # Groups of 3–6 videos (UCF-101-24's: 4–7); only the last one is cut to the total.
    assert cfg.group_size == (3, 6)
    assert all(3 <= s <= 6 for s in sizes[:-1]) and 1 <= sizes[-1] <= 6
    assert len(set(sizes[:-1])) == 4  # every size occurs
    test = sum(g.size for g in plan if g.split == "test") / cfg.num_videos
    assert 0.25 <= test <= 0.35


@pytest.fixture(scope="module")
def small_longtail(tmp_path_factory):
    # The longtail preset's sizes and difficulty with fewer videos (each class still needs a
    # train group and min_test_groups test groups of 3–6 videos).
    cache = tmp_path_factory.mktemp("lt")
    return synthetic_dataset("longtail", seed=0, cache_dir=cache, workers=1, num_videos=100)


def test_small_longtail_lengths_vary_and_groups_are_split_whole(small_longtail):
    ds = small_longtail
    cfg = PRESETS["longtail"]
    lens = np.array([v.num_frames for v in ds])
    assert lens.min() >= cfg.min_len and lens.max() <= cfg.max_len
    assert lens.max() - lens.min() >= 60 and lens.std() > 15
    by_group: dict[str, set] = {}
    for v in ds:
        by_group.setdefault(v.group, set()).add((v.split, v.label))
    assert all(len(s) == 1 for s in by_group.values())  # one split and class per group
    assert (ds.class_counts("train") > 0).all() and (ds.class_counts("test") > 0).all()


def _largest_motion_in_a_box(frames: np.ndarray, tubes) -> list[bool]:
    """Per action frame: does the 8×8 block of largest frame-to-frame change touch a GT box?"""
    d = np.abs(np.diff(frames.astype(np.float32), axis=0)).sum(-1)  # (T-1, S, S)
    n, S = d.shape[0], d.shape[1]
    blocks = d.reshape(n, S // 8, 8, S // 8, 8).sum((2, 4))
    out = []
    for f in range(n):
        boxes = [t.boxes[f - t.start] for t in tubes if t.start <= f < t.end]
        if boxes:
            by, bx = np.unravel_index(blocks[f].argmax(), blocks[f].shape)
            cx, cy = bx * 8 + 4, by * 8 + 4
            out.append(
                any(b[0] - 4 <= cx <= b[2] + 4 and b[1] - 4 <= cy <= b[3] + 4 for b in boxes)
            )
    return out


def test_distractor_motion_moves_figures_outside_the_ground_truth():
    # The same videos rendered with and without distractor motion (no noise, still camera):
    # the tubes are identical (a moving distractor never carries a tube or moves an actor's),
    # frames differ where distractors move, and the largest motion in a frame is then more
    # often away from the actor, so motion alone does not localize it.
    cfg = replace(PRESETS["longtail"], num_videos=120, noise=(0.0, 0.0), jitter=0.0)
    off = replace(cfg, distractor_motion=0.0)
    moved, on_hits, off_hits = 0, [], []
    for g in video_plan(cfg, seed=0)[:24]:
        a, tubes_a = generate_video(cfg, 0, g, 0)
        b, tubes_b = generate_video(off, 0, g, 0)
        assert [(t.label, t.start) for t in tubes_a] == [(t.label, t.start) for t in tubes_b]
        assert all(np.array_equal(s.boxes, t.boxes) for s, t in zip(tubes_a, tubes_b, strict=True))
        moved += int(not np.array_equal(a, b))
        on_hits += _largest_motion_in_a_box(a, tubes_a)
        off_hits += _largest_motion_in_a_box(b, tubes_b)
    assert moved >= 6  # 0–3 distractors, each moving with probability 0.6
    miss_on, miss_off = 1 - np.mean(on_hits), 1 - np.mean(off_hits)
    assert miss_on >= 0.15 and miss_on >= 3 * miss_off, (miss_on, miss_off)


def test_distractor_patterns_are_never_labelled_classes():
    cfg = PRESETS["longtail"]
    assert not set(distractor_patterns(cfg)) & set(cfg.classes)
    assert set(distractor_patterns(PRESETS["demo"])) == set(CLASSES) - set(PRESETS["demo"].classes)
    with pytest.raises(ValueError, match="distractor_classes"):
        replace(cfg, distractor_classes=("wave", "run"))
    with pytest.raises(ValueError, match="needs a pattern"):
        SyntheticConfig(num_classes=12, num_videos=600, distractor_motion=0.5)
    with pytest.raises(ValueError, match="long_tail"):
        replace(cfg, long_tail=0.5)
    with pytest.raises(ValueError, match="too few"):
        replace(cfg, num_videos=44)  # 5 classes × 3 groups × 3 videos = 45 at least
