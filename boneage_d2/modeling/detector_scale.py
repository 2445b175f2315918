"""Running a detector on a downscaled copy of the image while the rest reads the full size.

Model A's ``BONEAGE.HANDSEG.DETECTOR_SCALE``: a hand is a large object, so Mask R-CNN finds it
at a fraction of the resolution the bone-age regressor needs for the bones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from detectron2.structures import BitMasks, Boxes, Instances
from torch import Tensor

__all__ = ["box_scale_factors", "scale_image", "scale_instances", "scaled_size"]


def scaled_size(image_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(height, width) of an image of ``image_size`` resized by ``scale`` (at least 1 pixel)."""
    h, w = image_size
    return (max(1, round(h * scale)), max(1, round(w * scale))) if scale != 1.0 else (h, w)


def box_scale_factors(image_size: tuple[int, int], scale: float, device) -> Tensor:
    """[4] factors (x, y, x, y) from full-size to scaled pixels (exact for the rounded size)."""
    dh, dw = scaled_size(image_size, scale)
    return torch.tensor(
        [dw / image_size[1], dh / image_size[0]] * 2, device=device, dtype=torch.float32
    )


def scale_image(image: Tensor, scale: float) -> Tensor:
    """[C, H, W] image resized by ``scale`` (bilinear, antialiased; unchanged at 1)."""
    if scale == 1.0:
        return image
    size = scaled_size(image.shape[-2:], scale)
    return F.interpolate(
        image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True
    )[0]


def scale_instances(instances: Instances, scale: float) -> Instances:
    """Ground-truth ``instances`` in scaled pixels: boxes scaled, masks area-resized (>= 0.5)."""
    if scale == 1.0:
        return instances
    size = scaled_size(instances.image_size, scale)
    out = Instances(size)
    factors = box_scale_factors(instances.image_size, scale, instances.gt_boxes.device)
    out.gt_boxes = Boxes(instances.gt_boxes.tensor * factors)
    out.gt_classes = instances.gt_classes
    if instances.has("gt_masks"):
        masks = instances.gt_masks.tensor.float()
        if len(masks):
            masks = F.interpolate(masks[None], size=size, mode="area")[0]
        out.gt_masks = BitMasks(masks.new_zeros((0, *size)) if not len(masks) else masks >= 0.5)
    return out
