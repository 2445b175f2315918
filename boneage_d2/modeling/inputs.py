"""What every bone-age model does with Detectron2's ``list[dict]`` input before its own work.

Batching normalised images (padded the same way whatever the batch), the labels (``boneage``,
``male``) as tensors, pooling over each image's valid region, and config checks shared by the
meta-architectures.
"""

from __future__ import annotations

import numpy as np
import torch
from detectron2.modeling import Backbone
from detectron2.structures import Boxes, ImageList, Instances
from torch import Tensor

__all__ = [
    "batch_images",
    "boneage_targets",
    "check_backbone_feature",
    "male_tensor",
    "masked_global_avg_pool",
    "masked_global_pool",
    "square_pad_size",
    "with_empty_instances",
]


def square_pad_size(cfg) -> int:
    """Side of the fixed square every image is padded to (0 when ``PAD_TO_SQUARE`` is off): the
    largest long side the train or test resize can produce."""
    c = cfg.BONEAGE.INPUT
    if not c.PAD_TO_SQUARE:
        return 0
    return int(max(c.LONG_SIDE_TEST, np.ceil(c.LONG_SIDE_TRAIN * max(c.RANDOM_SCALE))))


def batch_images(images: list[Tensor], backbone: Backbone, pad_square_size: int = 0) -> ImageList:
    """Batch normalised [C, H, W] images with zero padding.

    With ``pad_square_size`` every image is padded to that fixed square (or to the largest image
    if it is larger: never cropped), so an image is padded the same way whatever its batch:
    GroupNorm statistics and pooling would otherwise depend on the other images.
    """
    constraints = dict(backbone.padding_constraints)
    if pad_square_size:
        largest = max(max(im.shape[-2:]) for im in images)
        constraints["square_size"] = max(pad_square_size, largest)
    return ImageList.from_tensors(
        images, backbone.size_divisibility, padding_constraints=constraints
    )


GLOBAL_POOLS = ("avg", "max", "avgmax")


def _valid_mask(feature: Tensor, image_sizes: list[tuple[int, int]], stride: int) -> Tensor:
    """[N, 1, H, W] 1.0 over each image's valid (unpadded) cells of a stride-``stride`` map."""
    _, _, h, w = feature.shape
    # Built from comparisons, not by writing into a zero tensor: an exported graph (TorchScript,
    # ONNX) then computes the same mask for any image size it is given.
    sizes = torch.stack([torch.as_tensor(s, device=feature.device) for s in image_sizes])
    cells = torch.clamp(torch.div(sizes + (stride - 1), stride, rounding_mode="floor"), min=1)
    rows = torch.arange(h, device=feature.device)[None, :] < cells[:, :1]  # [N, H]
    cols = torch.arange(w, device=feature.device)[None, :] < cells[:, 1:]  # [N, W]
    return (rows[:, None, :, None] & cols[:, None, None, :]).to(feature.dtype)


def masked_global_avg_pool(
    feature: Tensor, image_sizes: list[tuple[int, int]], stride: int
) -> Tensor:
    """Average a [N, C, H, W] feature over each image's valid (unpadded) region -> [N, C].

    Batches of mixed sizes are padded with zeros after normalisation; a plain global average
    would also average that padding, so the prediction would depend on the batch's other images.
    """
    mask = _valid_mask(feature, image_sizes, stride)
    return (feature * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3))


def masked_global_pool(
    feature: Tensor, image_sizes: list[tuple[int, int]], stride: int, pool: str = "avg"
) -> Tensor:
    """Pool a [N, C, H, W] feature over each image's valid region: "avg" -> [N, C], "max" ->
    [N, C] (padding never wins), "avgmax" -> [N, 2C] (average, then max)."""
    if pool not in GLOBAL_POOLS:
        raise ValueError(f"BONEAGE.GLOBAL.POOL={pool!r}; expected one of {GLOBAL_POOLS}")
    parts = []
    if pool in ("avg", "avgmax"):
        parts.append(masked_global_avg_pool(feature, image_sizes, stride))
    if pool in ("max", "avgmax"):
        mask = _valid_mask(feature, image_sizes, stride)
        parts.append(feature.masked_fill(mask == 0, float("-inf")).amax(dim=(2, 3)))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def check_backbone_feature(backbone: Backbone, name: str, key: str) -> None:
    """Raise a clear error when config ``key`` names a feature the backbone does not output."""
    if name not in backbone.output_shape():
        raise KeyError(
            f"{key}={name!r} is not a backbone output; available: "
            f"{sorted(backbone.output_shape())} (see MODEL.RESNETS.OUT_FEATURES)"
        )


def boneage_targets(batched_inputs: list[dict], device: torch.device) -> Tensor:
    """[N] float tensor of the inputs' ``"boneage"`` (months); a clear error when one is missing."""
    values = []
    for i, x in enumerate(batched_inputs):
        age = x.get("boneage")
        if age is None:
            raise KeyError(
                f"training input {i} ({x.get('file_name', 'unknown file')}) has no 'boneage' "
                "label; unlabelled images can be evaluated but not trained on"
            )
        values.append(float(age))
    return torch.tensor(values, dtype=torch.float32, device=device)


def male_tensor(batched_inputs: list[dict], device: torch.device) -> Tensor:
    """[N] float tensor, 1.0 for male, 0.0 for female, from the inputs' ``"male"`` entries (a
    bool, or a 0-dim tensor: an exported graph's input stays a graph input)."""
    if all(isinstance(x.get("male"), Tensor) for x in batched_inputs):
        return torch.stack([x["male"].reshape(()) for x in batched_inputs]).float().to(device)
    values = []
    for i, x in enumerate(batched_inputs):
        if "male" not in x or x["male"] is None:
            raise KeyError(
                f"input {i} ({x.get('file_name', 'unknown file')}) has no 'male' entry; "
                "bone-age models need the sex of every image"
            )
        values.append(float(bool(x["male"])))
    return torch.tensor(values, dtype=torch.float32, device=device)


def with_empty_instances(x: dict) -> dict:
    """The input with an empty ``instances`` if it has none (an image without hands)."""
    if x.get("instances") is not None:
        return x
    h, w = x["image"].shape[-2:]
    empty = Instances((h, w))
    empty.gt_boxes = Boxes(torch.zeros((0, 4)))
    empty.gt_classes = torch.zeros((0,), dtype=torch.int64)
    return {**x, "instances": empty}
