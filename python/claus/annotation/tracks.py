"""What an annotation tool shows between keyframes: Label Studio's and CVAT's track rules.

Both tools store a track as keyframes and draw a box on the frames between them. An import
must give every requested frame the box the tool shows there, and nothing where it shows
none. The two rules, read from the tools' own code:

Label Studio (`videorectangle` regions; frontend `regions/VideoRectangleRegion.js` `getShape`,
`regions/VideoRegion.js` `isInLifespan`, `utils/props.ts` `interpolateProp` in
HumanSignal/label-studio `web/libs/editor/src/`; the SDK's `extract_key_frames` in
`label_studio_tools/postprocessing/video.py` fills an export the same way):

* a keyframe is shown on its own frame, `enabled` or not;
* after a keyframe the region is shown while that keyframe is `enabled` (a keyframe without
  `enabled` counts as disabled, as in the frontend), x, y, width, height and rotation
  interpolated linearly towards the next keyframe, held after the last one up to the video's
  end; a disabled keyframe ends the track until the next keyframe;
* nothing is shown before the first keyframe.

CVAT (`<track>` of "CVAT for video 1.1"; `TrackManager.get_interpolated_shapes` in
cvat-ai/cvat `cvat/apps/dataset_manager/annotation.py`, which CVAT's own importer and exporter
use):

* a keyframe with `outside="1"` shows nothing, on its frame and up to the next keyframe;
* any other keyframe is shown on its frame, then interpolated linearly (xtl, ytl, xbr, ybr,
  rotation) towards the next keyframe, held after the last one up to the task's last frame.

Rotation takes the shorter way round in both. A rotated box (Label Studio rotates about the
top-left corner, CVAT about the centre, both clockwise in degrees on screen) becomes the
axis-aligned box that encloses it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .types import AnnotationFileError, ImportedBox

__all__ = ["CVAT", "LABEL_STUDIO", "Keyframe", "Track", "TrackRule", "enclosing_box",
           "shown_boxes", "track_boxes"]


@dataclass(frozen=True)
class TrackRule:
    """How one tool draws a track.

    Attributes:
        name: the tool.
        show_off_key: an "off" keyframe (Label Studio: not enabled; CVAT: outside) is still
            drawn on its own frame.
        anchor: the point rotation turns about: "corner" (top-left) or "centre".
    """

    name: str
    show_off_key: bool
    anchor: str


LABEL_STUDIO = TrackRule("Label Studio", show_off_key=True, anchor="corner")
CVAT = TrackRule("CVAT", show_off_key=False, anchor="centre")


@dataclass(frozen=True)
class Keyframe:
    """One keyframe of a track.

    frame: 0-based video frame. geom: (x, y, w, h, rotation): top-left corner and size in the
    tool's pixels, rotation in degrees. on: Label Studio's `enabled`, CVAT's not `outside`.
    where: the file and element, for messages.
    """

    frame: int
    geom: tuple[float, float, float, float, float]
    on: bool
    where: str


def _angle_diff(a: float, b: float) -> float:
    """b − a folded into [−180, 180): the shorter way from a to b."""
    return (b - a + 180.0) % 360.0 - 180.0


def _lerp(k0: Keyframe, k1: Keyframe, frame: int) -> tuple[float, ...]:
    r = (frame - k0.frame) / (k1.frame - k0.frame)
    a, b = k0.geom, k1.geom
    return (*(a[i] + (b[i] - a[i]) * r for i in range(4)),
            a[4] + _angle_diff(a[4], b[4]) * r)


def enclosing_box(geom: Sequence[float], anchor: str) -> tuple[float, float, float, float]:
    """[x1, y1, x2, y2] of (x, y, w, h, rotation): the box itself when not rotated, else the
    axis-aligned box enclosing the rectangle turned by `rotation` degrees (clockwise on screen,
    y down) about its top-left corner ("corner") or its centre ("centre")."""
    x, y, w, h, rot = (float(g) for g in geom)
    if rot % 360.0 == 0.0:
        return (x, y, x + w, y + h)
    t = math.radians(rot)
    c, s = math.cos(t), math.sin(t)
    ox, oy = (x, y) if anchor == "corner" else (x + w / 2, y + h / 2)
    xs, ys = [], []
    for px, py in ((x, y), (x + w, y), (x + w, y + h), (x, y + h)):
        dx, dy = px - ox, py - oy
        xs.append(ox + dx * c - dy * s)
        ys.append(oy + dx * s + dy * c)
    return (min(xs), min(ys), max(xs), max(ys))


def shown_boxes(
    keys: Sequence[Keyframe], frames: Iterable[int], rule: TrackRule, end: int
) -> dict[int, tuple[tuple[float, float, float, float, float], Keyframe | None]]:
    """The geometry the tool draws on each of `frames` (0-based), under `rule`.

    Args:
        keys: the track's keyframes, at distinct frames (any order).
        frames: the frames asked about; frames ≥ `end` are never shown.
        rule: `LABEL_STUDIO` or `CVAT`.
        end: one past the last frame the track can reach (the video's or the task's end).
    Returns:
        {frame: (geom, keyframe)} for the frames where the tool draws the track: the
        keyframe's own geometry (and the keyframe) on a keyframe's frame, else the
        interpolated or held geometry (and None). Frames it does not draw are absent.
    Raises:
        AnnotationFileError: two keyframes on one frame (the message names both).
    """
    keys = sorted(keys, key=lambda k: k.frame)
    for a, b in zip(keys, keys[1:], strict=False):
        if a.frame == b.frame:
            raise AnnotationFileError(f"{b.where}: a second keyframe on frame {b.frame} (also "
                                      f"{a.where})")
    at = [k.frame for k in keys]
    out = {}
    for f in frames:
        f = int(f)
        i = bisect.bisect_right(at, f) - 1  # the last keyframe at or before f
        if i < 0 or f >= end:
            continue
        k = keys[i]
        if k.frame == f:
            if k.on or rule.show_off_key:
                out[f] = (k.geom, k)
        elif k.on:
            out[f] = (_lerp(k, keys[i + 1], f) if i + 1 < len(keys) else k.geom, None)
    return out


@dataclass
class Track:
    """One track of a file: its class name, the tool's id for it, its keyframes, and where it
    is (file and element, for messages)."""

    label: str
    id: str
    keys: list[Keyframe]
    where: str


def track_boxes(
    video: str,
    tracks: Sequence[Track],
    rule: TrackRule,
    end: int,
    requested: Iterable[int],
    scale: tuple[float, float] = (1.0, 1.0),
) -> tuple[list[ImportedBox], int]:
    """The boxes the tool draws for the tracks of one video, as claus imports them.

    Every keyframe the tool draws becomes a box (`keyframe=True`; on a frame that was not
    requested it is an "extra" box); on every requested frame, and on every frame another
    track has a keyframe (so `--accept-extra` labels such a frame with all its actors), the
    tracks drawn there without a keyframe give their interpolated or held box
    (`keyframe=False`).

    Args:
        video: the claus video.
        tracks: its tracks.
        rule: the tool's rule.
        end: one past the last frame the tool shows (video or task end).
        requested: the frames asked about besides keyframes (the requested frames the tool
            can show: for a CVAT task, those on its frame grid).
        scale: (sx, sy) from the tool's pixels to the video's.
    Returns:
        (boxes, number of them that were rotated).
    """
    frames = set(int(f) for f in requested)
    frames.update(k.frame for t in tracks for k in t.keys)
    out, rotated = [], 0
    sx, sy = scale
    for t in tracks:
        for f, (geom, key) in sorted(shown_boxes(t.keys, frames, rule, end).items()):
            x1, y1, x2, y2 = enclosing_box(geom, rule.anchor)
            rotated += geom[4] % 360.0 != 0.0
            where = key.where if key is not None else f"{t.where}, interpolated on frame {f}"
            out.append(ImportedBox(video, f, t.label, (x1 * sx, y1 * sy, x2 * sx, y2 * sy),
                                   t.id, where, keyframe=key is not None))
    return out, rotated
