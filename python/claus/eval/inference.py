"""Sliding-clip inference: per-frame foreground and class probabilities for a whole video.

A video is covered by clips (the data layer's sliding windows); each clip's per-frame
foreground probabilities and its class probabilities are added to every frame it covers, and a
frame's prediction is the mean over the clips that cover it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from claus.models import Detector


@dataclass
class VideoPrediction:
    """Per-frame predictions of one video.

    fg: (N,H,W) float32 foreground probability (0 where no clip covered the frame).
    cls: (N,C) float32 class probability (the video's mean over clips where none covered it).
    covered: (N,) bool, frames at least one clip covered.
    """

    fg: np.ndarray
    cls: np.ndarray
    covered: np.ndarray

    @property
    def video_cls(self) -> np.ndarray:
        """(C,) mean class probability over the covered frames."""
        if not self.covered.any():
            return self.cls.mean(axis=0)
        return self.cls[self.covered].mean(axis=0)


class ClipAccumulator:
    """Running sums of clip predictions over the frames of one video.

    Args:
        num_frames: N; height, width: prediction size; num_classes: C.
    """

    def __init__(self, num_frames: int, height: int, width: int, num_classes: int) -> None:
        self.fg = torch.zeros(num_frames, height, width, dtype=torch.float64)
        self.cls = torch.zeros(num_frames, num_classes, dtype=torch.float64)
        self.count = torch.zeros(num_frames, dtype=torch.float64)

    def add(self, frames: torch.Tensor, fg: torch.Tensor, cls: torch.Tensor) -> None:
        """Add a batch of clips.

        Args:
            frames: (B,T) int64 frame index of each clip position (repeats allowed, e.g. padding
                by the last frame: each occurrence counts).
            fg: (B,T,H,W) foreground probabilities.
            cls: (B,C) class probabilities.
        """
        frames = frames.reshape(-1).to("cpu", torch.int64)
        if frames.numel() and (int(frames.min()) < 0 or int(frames.max()) >= len(self.count)):
            raise ValueError(f"frame index out of range [0, {len(self.count)})")
        T = fg.shape[1]
        self.fg.index_add_(0, frames, fg.detach().to("cpu", torch.float64).flatten(0, 1))
        per_frame_cls = cls.detach().to("cpu", torch.float64).repeat_interleave(T, dim=0)
        self.cls.index_add_(0, frames, per_frame_cls)
        self.count.index_add_(0, frames, torch.ones_like(frames, dtype=torch.float64))

    def result(self) -> VideoPrediction:
        covered = self.count > 0
        n = self.count.clamp_min(1)
        fg = self.fg / n[:, None, None]
        cls = self.cls / n[:, None]
        if covered.any() and not covered.all():
            cls[~covered] = self.cls[covered].sum(0) / self.count[covered].sum()
        return VideoPrediction(fg.float().numpy(), cls.float().numpy(), covered.numpy())


@torch.no_grad()
def predict_video(model: Detector, clips: Iterable[tuple[torch.Tensor, torch.Tensor]],
                  num_frames: int, device: torch.device | str = "cpu") -> VideoPrediction:
    """Run a detector over the clips of one video and average per frame.

    The model is put in eval mode (deterministic heads) for the call and restored after.

    Args:
        model: a `Detector`.
        clips: iterable of (clip (B,3,T,H,W) uint8 or float in [0,1], frames (B,T) int64 frame
            indices into the video).
        num_frames: N, frames in the video.
        device: where the model runs.

    Returns:
        VideoPrediction with fg (N,H,W) at the clips' resolution and cls (N,C).
    """
    was_training = model.training
    model.eval()
    acc: ClipAccumulator | None = None
    try:
        for clip, frames in clips:
            out = model(clip.to(device))
            fg = torch.sigmoid(out.loc.float())
            cls = torch.softmax(out.cls.float(), dim=1)
            if acc is None:
                acc = ClipAccumulator(num_frames, fg.shape[2], fg.shape[3], cls.shape[1])
            acc.add(frames, fg, cls)
    finally:
        model.train(was_training)
    if acc is None:
        raise ValueError("predict_video: no clips given")
    return acc.result()
