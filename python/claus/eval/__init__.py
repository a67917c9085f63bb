"""Evaluation: sliding-clip inference, masks → boxes → tubes, and the metrics.

Two protocols:

- `act` (default): `frame_ap` (f-mAP) and `video_ap` / `video_map_summary` (v-mAP), with the
  ACT/MOC conventions (+1 pixel IoU, greedy matching, raw-PR trapezoid AP; see `claus.eval.ap`).
- `localization`: `LocalizationMeter`, the VideoCapsuleNet protocol (fraction of ground-truth
  frames / videos whose mask IoU ≥ τ, averaged over classes).
"""

from ..lazy import lazy_getattr
from .ap import VIDEO_THRESHOLDS, ap_from_tp, frame_ap, video_ap, video_map_summary
from .boxes import box_area, box_iou, iou_matrix, tube_iou
from .detect import (
    Components,
    components,
    frame_detections,
    link_tubes,
    nms_all,
    tube_boxes,
    tube_nms,
    video_tubes,
)
from .localization import LocalizationMeter, boxes_to_masks

__all__ = [
    "VIDEO_THRESHOLDS",
    "ClipAccumulator",
    "Components",
    "LocalizationMeter",
    "VideoPrediction",
    "ap_from_tp",
    "box_area",
    "box_iou",
    "boxes_to_masks",
    "components",
    "frame_ap",
    "frame_detections",
    "iou_matrix",
    "link_tubes",
    "nms_all",
    "predict_video",
    "tube_boxes",
    "tube_iou",
    "tube_nms",
    "video_ap",
    "video_map_summary",
    "video_tubes",
]

#: Loaded on first use (PEP 562): inference needs torch, the metrics and settings do not.
_LAZY = {n: ".inference" for n in ("ClipAccumulator", "VideoPrediction", "predict_video")}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
