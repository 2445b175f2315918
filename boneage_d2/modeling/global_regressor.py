"""The global baseline: backbone -> pooled feature + gender embedding -> age head.

This is the "ResNet-50" row of ALA-Net's Table 1 and the reference row of every results table.
"""

from __future__ import annotations

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList
from torch import Tensor, nn

from ..data.transforms import square_pad_size
from .age_head import build_age_head
from .gender import GenderEmbedding, male_tensor

__all__ = [
    "GlobalBoneAgeRegressor",
    "masked_global_avg_pool",
    "boneage_targets",
    "check_backbone_feature",
]


def masked_global_avg_pool(
    feature: Tensor, image_sizes: list[tuple[int, int]], stride: int
) -> Tensor:
    """Average a [N, C, H, W] feature over each image's valid (unpadded) region -> [N, C].

    Batches of mixed sizes are padded with zeros after normalisation; a plain global average
    would also average that padding, so the prediction would depend on the batch's other images.
    """
    n, _, h, w = feature.shape
    mask = feature.new_zeros((n, 1, h, w))
    for i, (ih, iw) in enumerate(image_sizes):
        mask[i, :, : max(1, -(-ih // stride)), : max(1, -(-iw // stride))] = 1.0
    return (feature * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3))


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


@META_ARCH_REGISTRY.register()
class GlobalBoneAgeRegressor(nn.Module):
    """Bone-age regressor from a globally pooled backbone feature and the gender feature.

    Input: Detectron2's ``list[dict]`` with ``"image"`` (CHW, BGR-replicated grayscale), ``"male"``
    and, in training, ``"boneage"`` (months). Training returns ``{"loss_age": ...}``; inference
    returns one ``{"boneage": Tensor[] (months)}`` per image.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        in_feature: str,
        age_head: nn.Module,
        gender_embed_dim: int,
        pixel_mean: tuple[float, ...],
        pixel_std: tuple[float, ...],
        pad_square_size: int = 0,
    ):
        super().__init__()
        self.pad_square_size = pad_square_size
        self.backbone = backbone
        check_backbone_feature(backbone, in_feature, "BONEAGE.GLOBAL.IN_FEATURE")
        self.in_feature = in_feature
        self.gender = GenderEmbedding(gender_embed_dim) if gender_embed_dim > 0 else None
        self.age_head = age_head
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def age_head_in_dim(cls, cfg, backbone: Backbone) -> int:
        """Width of the fused vector this class feeds its age head (pooled feature + gender)."""
        return backbone.output_shape()[cfg.BONEAGE.GLOBAL.IN_FEATURE].channels + max(
            cfg.BONEAGE.GENDER.EMBED_DIM, 0
        )

    @classmethod
    def from_config(cls, cfg) -> dict:
        backbone = build_backbone(cfg)
        check_backbone_feature(backbone, cfg.BONEAGE.GLOBAL.IN_FEATURE, "BONEAGE.GLOBAL.IN_FEATURE")
        return {
            "backbone": backbone,
            "in_feature": cfg.BONEAGE.GLOBAL.IN_FEATURE,
            "age_head": build_age_head(cfg, cls.age_head_in_dim(cfg, backbone)),
            "gender_embed_dim": cfg.BONEAGE.GENDER.EMBED_DIM,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "pad_square_size": square_pad_size(cfg),
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalise and batch the images, zero-padded to ``pad_square_size`` (or larger, never
        cropping) so each image is padded the same way whatever its batch."""
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        return batch_images(images, self.backbone, self.pad_square_size)

    def global_feature(self, images: ImageList, features: dict[str, Tensor]) -> Tensor:
        """Pooled ``in_feature`` over each image's valid region: [N, C]."""
        stride = self.backbone.output_shape()[self.in_feature].stride
        return masked_global_avg_pool(features[self.in_feature], images.image_sizes, stride)

    def fused_features(
        self, images: ImageList, features: dict[str, Tensor], batched_inputs: list[dict]
    ) -> Tensor:
        """The vector the age head reads: global feature and gender embedding, concatenated."""
        parts = [self.global_feature(images, features)]
        if self.gender is not None:
            parts.append(self.gender(male_tensor(batched_inputs, self.device)))
        return torch.cat(parts, dim=1)

    def forward(self, batched_inputs: list[dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        outputs = self.age_head(self.fused_features(images, features, batched_inputs))
        if self.training:
            targets = boneage_targets(batched_inputs, self.device)
            return {"loss_age": self.age_head.losses(outputs, targets)}
        return [{"boneage": age} for age in self.age_head.predict_months(outputs)]
