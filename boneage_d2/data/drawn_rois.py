"""Hand-drawn ROI boxes through augmentation: they keep their own size and move with the image.

Keypoint-derived ROI boxes are squares of one size, recomputed by the mapper around the
transformed keypoints. Drawn boxes (``roi_source: "drawn"``, docs/data.md) vary in size and
shape, so they are transformed themselves: a box's four corners go through the transforms and
the box becomes their axis-aligned bounds (Detectron2's ``Transform.apply_box``). Resizes and
flips map a box exactly; a rotation by ``a`` gives the rotated box's bounding box, which holds
the whole drawn region and is up to ``cos a + sin a`` times wider (1.16 at 10 degrees).
"""

from __future__ import annotations

import numpy as np
import torch
from detectron2.structures import Boxes, BoxMode, Instances
from fvcore.transforms.transform import TransformList

__all__ = ["DRAWN", "has_drawn_rois", "roi_instances_from_drawn"]

DRAWN = "drawn"  # the ``roi_source`` of a hand-drawn ROI box


def has_drawn_rois(record: dict) -> bool:
    """Whether the record's ROI boxes are hand-drawn (the converter never mixes the two)."""
    return any(r.get("roi_source") == DRAWN for r in record.get("roi_annotations", ()))


def roi_instances_from_drawn(
    rois: list[dict], transforms: TransformList, image_size: tuple[int, int]
) -> Instances:
    """The drawn ROI boxes of a record through ``transforms``, clipped to the image of
    ``image_size`` (height, width); boxes cropped away entirely are dropped.

    Returns ``Instances`` with ``gt_boxes``, ``gt_classes`` (all 0) and ``gt_landmarks``, as
    :func:`~boneage_d2.data.mapper.roi_instances_from_keypoints` gives them.
    """
    xyxy = np.array(
        [BoxMode.convert(list(r["bbox"]), r["bbox_mode"], BoxMode.XYXY_ABS) for r in rois],
        dtype=np.float64,
    ).reshape(-1, 4)
    boxes = Boxes(torch.as_tensor(transforms.apply_box(xyxy), dtype=torch.float32).reshape(-1, 4))
    boxes.clip(image_size)
    keep = boxes.nonempty()
    inst = Instances(image_size)
    inst.gt_boxes = boxes[keep]
    inst.gt_classes = torch.zeros(int(keep.sum()), dtype=torch.int64)
    landmarks = torch.as_tensor([int(r["landmark"]) for r in rois], dtype=torch.int64)
    inst.gt_landmarks = landmarks[keep]
    return inst
