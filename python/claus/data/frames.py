"""Frame sources: random access to the uint8 RGB frames of one video.

Every source answers `read(frames) -> (n, H, W, 3) uint8` for 0-based frame indices, in the
order asked, without decoding the whole video. Sources are cheap to pickle (DataLoader workers):
open handles (memory maps, video containers) are dropped on pickling and reopened lazily in
the process that reads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["FrameReadError", "FrameSource", "ImageFolderFrames", "ArrayFrames",
           "MissingFrames", "VideoFileFrames"]


class FrameReadError(RuntimeError):
    """A frame could not be read: missing folder or file, unreadable or truncated image/video.

    Attributes:
        path: the file or folder that failed, when known (`claus.data.faults` records it).
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)


def _as_indices(
    frames: Sequence[int] | np.ndarray, num_frames: int | None, where: str
) -> np.ndarray:
    idx = np.asarray(frames, dtype=np.int64).reshape(-1)
    if num_frames is not None and idx.size and (idx.min() < 0 or idx.max() >= num_frames):
        bad = idx[(idx < 0) | (idx >= num_frames)][0]
        raise IndexError(f"{where}: frame {int(bad)} out of range [0, {num_frames})")
    return idx


class FrameSource:
    """Base class. Subclasses implement `read`; `num_frames` may be None when unknown."""

    num_frames: int | None = None

    def read(self, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames as (n, H, W, 3) uint8 RGB, n = len(frames), in the order given (0-based)."""
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


class ImageFolderFrames(FrameSource):
    """Frames stored as image files, e.g. `rgb-images/<video>/00001.jpg`.

    Args:
        pattern: a path with one `{}` field for the file number, e.g. `/d/v/{:05d}.jpg`.
        first: the file number of frame 0 (1 for UCF-101-24 / J-HMDB-21 releases).
        num_frames: the frame count, when known (index checks).
    """

    def __init__(self, pattern: str | os.PathLike, first: int = 1, num_frames: int | None = None):
        self.pattern = str(pattern)
        self.first = int(first)
        self.num_frames = num_frames

    def path(self, frame: int) -> Path:
        return Path(self.pattern.format(int(frame) + self.first))

    def read(self, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        idx = _as_indices(frames, self.num_frames, self.pattern)
        folder = Path(self.pattern).parent
        if not folder.is_dir():
            raise FrameReadError(f"frames folder {folder} does not exist", folder)
        out = []
        for f in idx:
            p = self.path(int(f))
            try:
                with Image.open(p) as im:
                    im.load()  # forces a full decode, so truncated files fail here
                    out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            except FileNotFoundError as e:
                raise FrameReadError(f"frame {int(f)}: image {p} is missing", p) from e
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise FrameReadError(
                    f"frame {int(f)}: image {p} is unreadable or truncated ({e})", p
                ) from e
        if not out:
            return np.zeros((0, 0, 0, 3), np.uint8)
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise FrameReadError(f"{folder}: images of different sizes {sorted(shapes)}", folder)
        return np.stack(out)

    def describe(self) -> str:
        return f"images {self.pattern} (first={self.first})"


class ArrayFrames(FrameSource):
    """Frames in a (T, H, W, 3) uint8 `.npy` file (memory-mapped) or an in-memory array."""

    def __init__(self, array: str | os.PathLike | np.ndarray):
        if isinstance(array, np.ndarray):
            self._check(array, "array")
            self.file: str | None = None
            self._arr: np.ndarray | None = array
            self.num_frames = int(array.shape[0])
        else:
            self.file = str(array)
            self._arr = None
            self.num_frames = None

    @staticmethod
    def _check(a: np.ndarray, where: str) -> None:
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[3] != 3:
            raise FrameReadError(
                f"{where}: expected a (T,H,W,3) uint8 array, got {a.dtype} {a.shape}",
                None if where == "array" else where,
            )

    @property
    def array(self) -> np.ndarray:
        if self._arr is None:
            try:
                a = np.load(self.file, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise FrameReadError(
                    f"frame array {self.file} is missing or unreadable ({e})", self.file
                ) from e
            self._check(a, self.file)
            self._arr = a
            self.num_frames = int(a.shape[0])
        return self._arr

    def read(self, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        a = self.array
        try:
            idx = _as_indices(frames, a.shape[0], self.file or "array")
        except IndexError as e:
            # The video's frame count was checked by the dataset: the array is short (a store
            # written for other data, or damaged).
            raise FrameReadError(f"frame array {self.file or 'array'} holds {a.shape[0]} "
                                 f"frames, fewer than asked for ({e})", self.file) from e
        return np.ascontiguousarray(a[idx])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.file is not None:
            state["_arr"] = None  # reopen the memory map in the worker instead of copying it
        return state

    def describe(self) -> str:
        return f"array {self.file}" if self.file else "in-memory array"


class VideoFileFrames(FrameSource):
    """Frames decoded from a video file (.avi, .mp4, ...) with PyAV (`pip install claus[video]`).

    Random access seeks to the keyframe before the first wanted frame and decodes forward to
    the last one, so reading a clip costs one GOP plus the clip, not the whole video. Frame i
    is the i-th decoded frame (presentation order).
    """

    def __init__(self, path: str | os.PathLike, num_frames: int | None = None):
        self.path = str(path)
        self.num_frames = num_frames
        self._container = None
        self._pid: int | None = None

    def _open(self):
        try:
            import av
        except ImportError as e:
            raise ImportError("reading video files needs PyAV: pip install 'claus[video]'") from e
        if self._container is None or self._pid != os.getpid():
            if not Path(self.path).is_file():
                raise FrameReadError(f"video file {self.path} does not exist", self.path)
            try:
                self._container = av.open(self.path)
            except Exception as e:  # PyAV raises its own error tree (av.error.*)
                raise FrameReadError(f"video file {self.path} is unreadable ({e})",
                                     self.path) from e
            self._pid = os.getpid()
        return self._container

    def _stream(self):
        c = self._open()
        if not c.streams.video:
            raise FrameReadError(f"video file {self.path} has no video stream", self.path)
        return c, c.streams.video[0]

    def count_frames(self) -> int:
        """The number of frames, decoding the file once when the header does not say."""
        if self.num_frames is None:
            c, s = self._stream()
            n = 0
            c.seek(0, stream=s)
            try:
                for _ in c.decode(s):
                    n += 1
            except Exception as e:
                raise FrameReadError(
                    f"video file {self.path}: decoding failed after {n} frames ({e})", self.path
                ) from e
            self.num_frames = n
        return self.num_frames

    def _frame_index(self, frame, s) -> int:
        start = s.start_time or 0
        rate = s.average_rate or s.guessed_rate
        return int(round(float((frame.pts - start) * s.time_base * rate)))

    def read(self, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = _as_indices(frames, self.num_frames, self.path)
        if idx.size == 0:
            return np.zeros((0, 0, 0, 3), np.uint8)
        c, s = self._stream()
        want = set(int(i) for i in idx)
        lo, hi = int(idx.min()), int(idx.max())
        got: dict[int, np.ndarray] = {}
        rate = s.average_rate or s.guessed_rate
        # Without a frame rate and time base, pts cannot give frame numbers: decode from the
        # start and count instead.
        timed = bool(rate and s.time_base)
        try:
            if timed and lo > 0:
                target = int(lo / (rate * s.time_base)) + (s.start_time or 0)
                c.seek(target, stream=s, backward=True, any_frame=False)
            else:
                c.seek(0, stream=s)
            pos = None
            for fr in c.decode(s):
                # After a seek the decoder restarts at a keyframe; its pts gives the index.
                pos = (
                    self._frame_index(fr, s)
                    if timed and fr.pts is not None
                    else (0 if pos is None else pos + 1)
                )
                if pos in want:
                    got[pos] = fr.to_ndarray(format="rgb24")
                if pos >= hi:
                    break
        except Exception as e:
            raise FrameReadError(f"video file {self.path}: decoding failed ({e})",
                                 self.path) from e
        missing = [i for i in want if i not in got]
        if missing:
            raise FrameReadError(
                f"video file {self.path}: frame {min(missing)} could not be decoded "
                "(truncated file or frame index past the end)", self.path
            )
        return np.stack([got[int(i)] for i in idx])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_container"] = None
        state["_pid"] = None
        return state

    def describe(self) -> str:
        return f"video {self.path}"


class MissingFrames(FrameSource):
    """A video whose frames are known to be unavailable (e.g. skipped while preparing a frame
    store): every read raises `FrameReadError(reason, path)`, so the stages that read it leave
    it out (`claus.data.faults`) with the reason it has no frames."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None,
                 num_frames: int | None = None):
        self.reason = str(reason)
        self.path = None if path is None else str(path)
        self.num_frames = num_frames

    def read(self, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        raise FrameReadError(self.reason, self.path)

    def describe(self) -> str:
        return f"no frames ({self.reason})"
