"""Geometry of the converted annotations: ROI boxes, clipped boxes, COCO keypoints, RLE masks.

Keypoints are in COCO convention (``x, y`` a pixel index, so pixel ``(i, j)`` covers
``[i, i+1) x [j, j+1)`` and its centre is ``(i + 0.5, j + 0.5)``); boxes are ``[x, y, w, h]`` in
continuous pixel coordinates. Computed coordinates are rounded to ``COORD_DECIMALS`` decimals so
that the json is stable across platforms and reruns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..schema import ROI_REFERENCE_LONG_SIDE, ROI_SIZE_PX, roi_boxes_xyxy, roi_side_px

__all__ = [
    "COORD_DECIMALS",
    "clip_box",
    "coco_keypoints",
    "encode_rle",
    "keypoint_extent",
    "roi_box",
    "roi_boxes",
    "rounded",
]

COORD_DECIMALS = 4  # computed boxes/areas are rounded to this many decimals (stable json)


def rounded(value: float) -> float:
    """``value`` rounded to ``COORD_DECIMALS`` decimals, with -0.0 turned into 0.0."""
    return round(float(value), COORD_DECIMALS) + 0.0


def roi_box(
    x: float,
    y: float,
    width: int,
    height: int,
    roi_size_px: float = ROI_SIZE_PX,
    roi_reference_long_side: float = ROI_REFERENCE_LONG_SIDE,
) -> list[float] | None:
    """Square ROI box ``[x, y, w, h]`` around a keypoint given in COCO convention (pixel index).

    The box is centred at the continuous position ``(x + 0.5, y + 0.5)``, its side is
    ``roi_side_px`` (64 px at a 512-px long side by default, in original-image pixels), and it is
    clipped to ``[0, width] x [0, height]``. Returns None when nothing of the box is inside.
    """
    boxes = roi_boxes(np.array([[x, y, 2.0]]), width, height, roi_size_px, roi_reference_long_side)
    return boxes[0][1] if boxes else None


def roi_boxes(
    kps: np.ndarray, width: int, height: int, roi_size_px: float, roi_reference_long_side: float
) -> list[tuple[int, list[float]]]:
    """``(landmark index, [x, y, w, h])`` for every visible keypoint ([K, 3], COCO convention)
    whose ROI box is (at least partly) inside the image."""
    index = np.flatnonzero(kps[:, 2] > 0)
    if len(index) == 0:
        return []
    side = roi_side_px(height, width, roi_size_px, roi_reference_long_side)
    xyxy, keep = roi_boxes_xyxy(kps[index, :2] + 0.5, side, width, height)
    boxes = np.round(
        np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1), COORD_DECIMALS
    )
    boxes = boxes + 0.0  # -0.0 -> 0.0
    return [(int(j), b) for j, b, k in zip(index.tolist(), boxes.tolist(), keep.tolist()) if k]


def clip_box(box: Sequence[float], width: int, height: int) -> list[float] | None:
    """``[x, y, w, h]`` clipped to ``[0, width] x [0, height]`` (rounded); None when empty."""
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return [rounded(x0), rounded(y0), rounded(x1 - x0), rounded(y1 - y0)]


def keypoint_extent(kps: np.ndarray, width: int, height: int) -> list[float] | None:
    """The clipped box spanned by the visible keypoints' pixel centres (at least 1 x 1 px);
    None when no keypoint is visible or the box lies outside the image."""
    vis = kps[kps[:, 2] > 0]
    if len(vis) == 0:
        return None
    x0, y0 = vis[:, 0].min() + 0.5, vis[:, 1].min() + 0.5
    x1, y1 = vis[:, 0].max() + 0.5, vis[:, 1].max() + 0.5
    return clip_box([x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)], width, height)


def coco_keypoints(kps: np.ndarray | None, k: int) -> tuple[list[float | int], int]:
    """Flat COCO keypoint list (invisible points as 0, 0, 0) and the visible count; ``kps``
    None gives K invisible points."""
    if kps is None:
        return [0.0, 0.0, 0] * k, 0
    flat: list[float | int] = []
    for x, y, v in kps.tolist():
        flat += [float(x), float(y), int(v)] if v > 0 else [0.0, 0.0, 0]
    return flat, int((kps[:, 2] > 0).sum())


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """A boolean HxW mask as COCO compressed RLE with ``counts`` as text (json-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}
