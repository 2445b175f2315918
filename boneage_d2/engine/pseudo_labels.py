"""Pseudo ROI keypoints: a trained ALA-Net's ROI boxes on unannotated films, written as a
BoNet-style keypoint json the converter reads (``--keypoints``).

Real RSNA films usually come without hand keypoints, so ALA-Net's RPN has nothing to learn from
on them. Self-training gives it something: the ROIs an ALA-Net trained where keypoints exist
(e.g. on the phantom) predicts on the new films, their centres written as keypoints (COCO
pixel-index convention), so the converter derives ROI boxes from them as it does from real
keypoints. ROIs are class-agnostic, so keypoint ``k`` is the ``k``-th ROI by objectness, not a
named landmark; ROIs below ``min_score`` are left unlabelled (v = 0).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..schema import HAND_CATEGORY, HAND_CATEGORY_ID

__all__ = ["pseudo_keypoint_json"]


def pseudo_keypoint_json(
    predictions: Iterable[tuple[str, dict]],
    num_rois: int,
    min_score: float = 0.5,
    description: str = "",
) -> dict:
    """A BoNet-style keypoint json from ``(file path, ALA-Net output)`` pairs.

    Each output's ``instances`` (ROI boxes in original pixels, by objectness) give up to
    ``num_rois`` keypoints at the box centres; fewer ROIs or low scores leave keypoints at v = 0.
    The file stem must be the RSNA id (the converter joins on it).
    """
    images, annotations = [], []
    for path, output in predictions:
        inst = output["instances"].to("cpu")
        h, w = inst.image_size
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": Path(path).name, "width": w, "height": h})
        keypoints: list[float | int] = []
        boxes, scores = inst.pred_boxes.tensor.tolist(), inst.scores.tolist()
        for k in range(num_rois):
            if k < len(boxes) and scores[k] >= min_score:
                x0, y0, x1, y1 = boxes[k]
                keypoints += [round((x0 + x1) / 2 - 0.5, 2), round((y0 + y1) / 2 - 0.5, 2), 2]
            else:
                keypoints += [0.0, 0.0, 0]
        visible = sum(1 for v in keypoints[2::3] if v)
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": HAND_CATEGORY_ID,
                "keypoints": keypoints,
                "num_keypoints": visible,
            }
        )
    names = [f"roi_{k + 1}" for k in range(num_rois)]
    return {
        "info": {"description": description or "pseudo ROI keypoints", "source": os.getcwd()},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": HAND_CATEGORY_ID, "name": HAND_CATEGORY, "keypoints": names}],
    }
