"""The regressor's view of a hand: square crops of the image, gated by the hand mask.

Pure tensor functions used by ``HandSegBoneAgeRCNN`` (Model A): crop a box out of an image and
resize it (ROIAlign), resample Mask R-CNN's box-relative masks onto those crops, and set the
pixels outside the hand to a background value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import roi_align

__all__ = [
    "crop_and_resize",
    "gate_with_mask",
    "hand_crops",
    "resample_box_masks",
    "square_boxes",
    "whole_image_crop",
]


def square_boxes(boxes: Tensor) -> Tensor:
    """[K, 4] XYXY boxes -> squares with the same centres and side = the longer box side."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values.clamp(min=1.0) / 2
    return torch.cat([centre - half, centre + half], dim=1)


def crop_and_resize(maps: Tensor, boxes: Tensor, size: int, batch_index: Tensor | None = None):
    """Crop ``boxes`` [K, 4] (XYXY, pixels, continuous coordinates) out of ``maps`` [B, C, H, W]
    and resize each to ``size`` x ``size`` (ROIAlign, area-averaged when shrinking; zero outside
    the map). ``batch_index`` [K] says which map each box reads (default: all map 0).
    Returns [K, C, size, size]."""
    if batch_index is None:
        batch_index = boxes.new_zeros(len(boxes))
    rois = torch.cat([batch_index.to(boxes.dtype)[:, None], boxes], dim=1)
    return roi_align(maps, rois, output_size=size, spatial_scale=1.0, aligned=True)


def resample_box_masks(masks: Tensor, mask_boxes: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Resample box-relative masks onto other boxes' ``size`` x ``size`` grids (differentiable).

    Args:
        masks: [K, M, M] mask values over ``mask_boxes`` (Mask R-CNN's per-box masks).
        mask_boxes: [K, 4] XYXY boxes the masks cover, in image pixels.
        boxes: [K, 4] XYXY target boxes (e.g. the squared crop boxes), in image pixels.
    Returns:
        [K, size, size]; zero where a target cell lies outside its mask box.
    """
    k = len(masks)
    t = (torch.arange(size, device=masks.device, dtype=masks.dtype) + 0.5) / size
    xs = boxes[:, 0:1] + t[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # [K, S] pixel centres
    ys = boxes[:, 1:2] + t[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    mw = (mask_boxes[:, 2:3] - mask_boxes[:, 0:1]).clamp(min=1e-3)
    mh = (mask_boxes[:, 3:4] - mask_boxes[:, 1:2]).clamp(min=1e-3)
    gx = (xs - mask_boxes[:, 0:1]) / mw * 2 - 1
    gy = (ys - mask_boxes[:, 1:2]) / mh * 2 - 1
    grid = torch.stack(
        [gx[:, None, :].expand(k, size, size), gy[:, :, None].expand(k, size, size)], dim=-1
    )
    return F.grid_sample(
        masks[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[:, 0]


def gate_with_mask(crops: Tensor, masks: Tensor, background: float) -> Tensor:
    """``crops`` [K, C, S, S] kept where ``masks`` [K, S, S] (in [0, 1]) is 1, ``background``
    where it is 0, blended in between (soft masks)."""
    m = masks[:, None]
    return crops * m + background * (1.0 - m)


def hand_crops(
    image: Tensor,
    boxes: Tensor,
    masks: Tensor,
    mask_boxes: Tensor | None,
    *,
    size: int,
    background: float,
    square: bool,
) -> tuple[Tensor, Tensor]:
    """The regressor inputs of the hands of one image.

    Args:
        image: [3, H, W] float pixel values.
        boxes: [K, 4] hand boxes (XYXY, that image's pixels); ``square``: expand each to a square
            around its centre first (keeps the hand's aspect ratio).
        masks: [K, H, W] full-image masks (``mask_boxes`` None) or [K, M, M] masks over
            ``mask_boxes`` [K, 4] (Mask R-CNN's box-relative masks); values in [0, 1].
    Returns:
        ([K, 3, size, size] gated crops, [K, 4] crop boxes).
    """
    crop_boxes = square_boxes(boxes) if square else boxes
    crops = crop_and_resize(image[None], crop_boxes, size)
    if mask_boxes is None:
        index = torch.arange(len(boxes), device=boxes.device)
        gates = crop_and_resize(masks[:, None].float(), crop_boxes, size, index)[:, 0]
    else:
        gates = resample_box_masks(masks, mask_boxes, crop_boxes, size)
    return gate_with_mask(crops, gates, background), crop_boxes


def whole_image_crop(
    image: Tensor, *, size: int, background: float, square: bool
) -> tuple[Tensor, Tensor]:
    """The whole image as one regressor input: ([3, size, size] gated to the image area, [4]
    crop box), for images where no hand is known."""
    h, w = image.shape[-2:]
    box = torch.tensor([[0.0, 0.0, w, h]], device=image.device)
    box = square_boxes(box) if square else box
    crop = crop_and_resize(image[None], box, size)
    inside = crop_and_resize(image.new_ones((1, 1, h, w)), box, size)[:, 0]
    return gate_with_mask(crop, inside, background)[0], box[0]
