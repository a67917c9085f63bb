"""`DetectionSettings`: how per-frame probabilities become detections and tubes.

Torch-free on purpose: `TrainConfig` holds these settings, and the tools that only read
configurations must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CLASS_SCOPES", "DetectionSettings"]

CLASS_SCOPES = ("frame", "video")


@dataclass
class DetectionSettings:
    """How per-frame probabilities become detections and tubes.

    Attributes:
        fg_threshold: a pixel is foreground when its probability ≥ this.
        smooth: each frame's foreground probability is first averaged with that of the
            `smooth` frames on either side (edges repeated; 0 = off): one flickering frame
            then no longer splits a tube in two.
        min_area: foreground regions with fewer pixels (at prediction size) are dropped.
        max_per_frame: most confident regions kept per frame.
        top_k: classes per region in the frame detections.
        link_iou, max_gap: temporal linking (`claus.eval.link_tubes`).
        min_length: shortest tube kept, in frames.
        tube_top_k: labels per tube.
        nms_iou: tube NMS threshold (None: no NMS).
        class_scope: "frame": a frame's detections take that frame's class probabilities;
            "video": every frame takes the video's, averaged over its frames weighted by each
            frame's peak foreground probability (where the actor is seen acting), for videos
            that show one action class, as UCF-101-24's and J-HMDB's do.
    """

    fg_threshold: float = 0.5
    smooth: int = 1
    min_area: int = 4
    max_per_frame: int = 10
    top_k: int = 3
    link_iou: float = 0.2
    max_gap: int = 2
    min_length: int = 3
    tube_top_k: int = 3
    nms_iou: float | None = 0.5
    class_scope: str = "frame"

    def __post_init__(self) -> None:
        if self.class_scope not in CLASS_SCOPES:
            raise ValueError(f"class_scope must be one of {CLASS_SCOPES}, got "
                             f"{self.class_scope!r}")
