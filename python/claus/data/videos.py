"""A folder of videos nobody has labelled yet: the `videos` dataset.

The case of most users: their own footage, no boxes, a labelling budget. Layout::

    ROOT/classes.txt     the action classes, one per line (optional when test.json names them)
    ROOT/train/          the unlabelled videos: video files (.mp4 .avi .mov .mkv .webm .m4v),
                         or folders of frame images (.jpg / .png, sorted by name), any depth;
                         without train/, every video under ROOT except those of test.json
    ROOT/test.json       optional: a small labelled test set, a claus dataset JSON
                         (`claus.data.custom`), whose videos become the "test" split

Video names are paths relative to the training folder without the extension
("cam1/0001"). Training videos are `annotated=False`: budgets count frames, the initial set
is chosen by claus and labelled by people like any round (`claus.rounds`), and without
test.json a run skips evaluation and says so.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .dataset import Video, VideoDataset
from .frames import FrameReadError, ImageFolderFrames, VideoFileFrames

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "folder_listing", "load_video_folder"]

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def _train_folder(root: Path) -> Path:
    return root / "train" if (root / "train").is_dir() else root


def folder_listing(root: str | os.PathLike) -> list[tuple[str, Path]]:
    """[(video name, path)] of the training folder's videos, sorted by name: video files and
    folders that directly hold frame images."""
    root = Path(root)
    base = _train_folder(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        d = Path(dirpath)
        images = [f for f in filenames if f.lower().endswith(IMAGE_EXTS)]
        if images and d != base:
            out.append((d.relative_to(base).as_posix(), d))
            dirnames[:] = []  # a frame folder is one video
            continue
        for f in sorted(filenames):
            if f.lower().endswith(VIDEO_EXTS):
                p = d / f
                out.append((p.relative_to(base).with_suffix("").as_posix(), p))
    return sorted(out)


def _classes(root: Path, test: VideoDataset | None) -> list[str]:
    path = root / "classes.txt"
    if path.is_file():
        names = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        if not names:
            raise ValueError(f"{path}: no class names; write one action class per line")
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: class names repeat; each class once")
        if test is not None and list(test.classes) != names:
            raise ValueError(f"{path} and {root / 'test.json'} name different classes "
                             f"({names} vs {list(test.classes)}); make them agree")
        return names
    if test is not None:
        return list(test.classes)
    raise FileNotFoundError(f"{path}: missing; write the action classes to label, one per "
                            "line")


def _frames_video(name: str, folder: Path) -> Video:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    from PIL import Image

    with Image.open(files[0]) as im:
        w, h = im.size
    return Video(name, -1, len(files), h, w, "train",
                 source=_ListedFrames(files), annotated=False)


def _file_video(name: str, path: Path) -> Video:
    src = VideoFileFrames(path)
    _, stream = src._stream()
    n = int(stream.frames or 0) or src.count_frames()
    src.num_frames = n
    h, w = int(stream.codec_context.height), int(stream.codec_context.width)
    return Video(name, -1, n, h, w, "train", source=src, annotated=False)


class _ListedFrames(ImageFolderFrames):
    """Frames from an explicit sorted list of image files (any names)."""

    def __init__(self, files: list[Path]):
        self.files = [str(f) for f in files]
        super().__init__(str(Path(self.files[0]).parent / "{}"), first=0,
                         num_frames=len(self.files))

    def path(self, frame: int) -> Path:
        return Path(self.files[int(frame)])


def load_video_folder(root: str | os.PathLike) -> VideoDataset:
    """The `videos` dataset of a folder (layout in the module docstring).

    A video whose file cannot be opened is skipped with a warning that names it and counts
    the skipped ones; a folder with no readable video is an error.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; --root names the folder of videos")
    test = None
    if (root / "test.json").is_file():
        from .custom import load_custom

        test = load_custom(root / "test.json")
    classes = _classes(root, test)
    test_names = {v.name for v in test.videos} if test is not None else set()
    videos, bad = [], []
    for name, path in folder_listing(root):
        if name in test_names:
            continue
        try:
            videos.append(_frames_video(name, path) if path.is_dir() else _file_video(name, path))
        except (FrameReadError, OSError, ValueError) as exc:
            bad.append(f"{name} ({exc})")
    if bad:
        warnings.warn(f"{root}: skipped {len(bad)} unreadable video(s): {'; '.join(bad)}",
                      stacklevel=2)
    if not videos:
        raise ValueError(f"{_train_folder(root)}: no readable video files "
                         f"({', '.join(VIDEO_EXTS)}) or frame folders; put the videos to label "
                         "there")
    if test is not None:
        for v in test.videos:
            v.split = "test"
        videos += test.videos
    return VideoDataset("videos", classes, videos, strict=False)
