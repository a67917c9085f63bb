"""Videos for annotation tools: the requested videos as H.264 MP4 files that browsers play.

Label Studio and CVAT label videos, not frame folders, and browsers play neither .avi files
nor image sequences. `encode_videos` writes `FOLDER/<video>.mp4` for every video of the waiting
round's requests (only those), reading the frames through the dataset, so frame i of a file is
claus frame i whatever the dataset stores (frame folders, arrays, a frame store, video files):

* H.264 (libx264, through PyAV), yuv420p, the frame rate of `task_fps`;
* no B-frames: frame i is shown at time i / fps exactly, with no edit list to honour;
* a keyframe every second, so the players seek and step quickly;
* the index first (`+faststart`), so playback starts before the whole file is fetched;
* yuv420p wants even sizes: an odd width or height gets one black column or row on the right
  or bottom; boxes keep their pixel coordinates (the padding is beyond them), and Label Studio
  tasks say which size their percentages refer to (`data.claus_size`).

A file already there with the same frame count, size and rate is kept: videos are encoded once
and reused by later exports and rounds (delete a file to have it encoded again).

A video whose frames cannot be read is left out with a warning naming the file and the reason
(`claus.data.faults`); the export fails only when more than the run's `max_bad_share` of the
dataset's videos are unreadable, or none of the requested ones can be read.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..data import VideoDataset
from ..data.dataset import Video
from ..data.faults import DEFAULT_MAX_BAD_SHARE, BadVideos
from ..data.frames import FrameReadError
from ..io import atomic_write_bytes
from .pending import PendingRound, safe_relpath, video_fps

__all__ = ["DEFAULT_FPS", "NATIVE_FPS", "VIDEOS", "EncodedVideo", "encode_videos",
           "encoded_size", "task_fps", "video_file"]

log = logging.getLogger(__name__)

#: The frame rate of tasks whose videos do not say (Label Studio's own default).
DEFAULT_FPS = 24.0
#: Frame rates of the datasets distributed as frames: the rates of their source videos
#: (UCF-101 at 25 fps, HMDB-51 clips of J-HMDB at 30).
NATIVE_FPS = {"ucf101-24": 25.0, "jhmdb-21": 30.0}
#: The default folder of encoded videos, in the run folder: one for every round.
VIDEOS = "videos"
#: Frames decoded and encoded at a time.
_CHUNK = 64


@dataclass(frozen=True)
class EncodedVideo:
    """One encoded video: the claus name, its file, frame rate, encoded (even) size, and
    whether an earlier export had written it already."""

    video: str
    path: Path
    fps: float
    width: int
    height: int
    reused: bool


def task_fps(ds: VideoDataset, v: Video, fps: float | None = None) -> float:
    """The frame rate of a video's task: `fps` when given, else the video file's own, else
    the dataset's (`NATIVE_FPS`), else `DEFAULT_FPS`."""
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"--fps: must be positive, got {fps}")
        return float(fps)
    return video_fps(v) or NATIVE_FPS.get(ds.name.partition(":")[0]) or DEFAULT_FPS


def encoded_size(v: Video) -> tuple[int, int]:
    """(width, height) of the encoded video: the frame size rounded up to even numbers."""
    return v.width + v.width % 2, v.height + v.height % 2


def video_file(folder: str | Path, video: str) -> Path:
    """`FOLDER/<video>.mp4` (the name may hold folders, e.g. `walk/g0003_c01.mp4`)."""
    rel = safe_relpath(video)
    return Path(folder) / rel.parent / (rel.name + ".mp4")


def max_bad_share(pending: PendingRound) -> float:
    """The share of unreadable videos the run tolerates (`TrainConfig.max_bad_share`; the
    default for a round without a run configuration)."""
    cfg = getattr(pending, "cfg", None)
    return cfg.train.max_bad_share if cfg is not None else DEFAULT_MAX_BAD_SHARE


def _rate(fps: float) -> Fraction:
    # 29.97 and friends are 30000/1001 exactly; whole rates stay whole.
    return Fraction(fps).limit_denominator(1001)


def _is_current(path: Path, n: int, size: tuple[int, int], rate: Fraction) -> bool:
    import av

    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            return (s.frames == n and (s.codec_context.width, s.codec_context.height) == size
                    and s.average_rate == rate)
    except Exception:  # unreadable or cut short: encode it again
        return False


def _encode(ds: VideoDataset, v: Video, path: Path, rate: Fraction) -> None:
    import av

    if "libx264" not in av.codecs_available:
        raise ImportError("this PyAV build has no H.264 encoder (libx264); install PyAV from "
                          "its wheels (pip install av), which include it")
    width, height = encoded_size(v)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "video.mp4"
        with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as c:
            s = c.add_stream("libx264", rate=rate)
            s.width, s.height, s.pix_fmt = width, height, "yuv420p"
            s.options = {"crf": "18", "preset": "veryfast", "bf": "0",
                         "g": str(max(1, round(float(rate))))}
            canvas = np.zeros((height, width, 3), np.uint8)
            for a in range(0, v.num_frames, _CHUNK):
                frames = ds.read_frames(v.name, range(a, min(a + _CHUNK, v.num_frames)))
                for i, img in enumerate(frames, start=a):
                    canvas[: v.height, : v.width] = img
                    frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
                    frame.pts = i
                    for pkt in s.encode(frame):
                        c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        atomic_write_bytes(path, out.read_bytes())


def encode_videos(
    pending: PendingRound,
    folder: str | Path,
    *,
    fps: float | None = None,
    bad: BadVideos | None = None,
) -> dict[str, EncodedVideo]:
    """Encode the videos of the waiting round's requests into `folder` (see the module
    docstring); files already there at the same frame count, size and rate are kept.

    Args:
        pending: the waiting round.
        folder: where `<video>.mp4` files go (claus.select uses `RUN/videos`).
        fps: the frame rate (default: `task_fps`).
        bad: the ledger of unreadable videos (stage "export"): those it holds are not read,
            those found here are added. Default: a new one at the run's `max_bad_share`.
    Returns:
        {video: EncodedVideo}, in request order, without the unreadable videos.
    Raises:
        ImportError: PyAV (or its H.264 encoder) is missing.
        TooManyBadVideos: too many unreadable videos, or none of the requested readable.
    """
    try:
        import av  # noqa: F401
    except ImportError as e:
        raise ImportError("--encode needs PyAV: pip install 'claus[video]' (or pip install av)"
                          ) from e
    ds = pending.dataset
    bad = BadVideos.of(ds, max_bad_share(pending)) if bad is None else bad
    out: dict[str, EncodedVideo] = {}
    requests = pending.requests
    for req in requests:
        v = ds[req.video]
        if v.name in bad:
            continue
        rate = _rate(task_fps(ds, v, fps))
        path = video_file(folder, v.name)
        size = encoded_size(v)
        reused = path.is_file() and _is_current(path, v.num_frames, size, rate)
        if not reused:
            log.info("encoding %s (%d frames, %dx%d, %s fps) → %s", v.name, v.num_frames,
                     *size, rate, path)
            try:
                _encode(ds, v, path, rate)
            except FrameReadError as e:  # nothing is written: the file appears whole or not
                bad.add(v.name, "export", e)
                continue
        out[v.name] = EncodedVideo(v.name, path, float(rate), *size, reused)
    if requests and not out:
        raise bad.none_left(f"the {len(requests)} requested videos")
    kept = sum(e.reused for e in out.values())
    left = len(requests) - len(out)
    log.info("videos in %s: %d encoded, %d already there%s", folder, len(out) - kept, kept,
             f", {left} left out (unreadable)" if left else "")
    return out
