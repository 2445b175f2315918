"""The global baseline: backbone -> pooled feature + gender embedding -> age head.

This is the "ResNet-50" row of ALA-Net's Table 1 and the reference row of every results table.
"""

from __future__ import annotations

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList
from torch import Tensor, nn

from .age_head import build_age_head
from .gender import GenderEmbedding
from .inputs import (
    batch_images,
    boneage_targets,
    check_backbone_feature,
    male_tensor,
    masked_global_pool,
    square_pad_size,
)

__all__ = ["GlobalBoneAgeRegressor"]


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
        pool: str = "avg",
        interval_coverage: float = 0.9,
    ):
        super().__init__()
        self.pool = pool
        self.interval_coverage = interval_coverage
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
        channels = backbone.output_shape()[cfg.BONEAGE.GLOBAL.IN_FEATURE].channels
        width = 2 * channels if cfg.BONEAGE.GLOBAL.POOL == "avgmax" else channels
        return width + max(cfg.BONEAGE.GENDER.EMBED_DIM, 0)

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
            "pool": cfg.BONEAGE.GLOBAL.POOL,
            "interval_coverage": cfg.BONEAGE.INTERVALS.COVERAGE,
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
        """Pooled ``in_feature`` over each image's valid region: [N, C] ([N, 2C] for "avgmax")."""
        stride = self.backbone.output_shape()[self.in_feature].stride
        return masked_global_pool(features[self.in_feature], images.image_sizes, stride, self.pool)

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
        return self.age_results(outputs)

    def age_results(self, outputs: Tensor) -> list[dict]:
        """Per image ``boneage`` (months) and, from an ordinal head, ``boneage_rank_lo`` /
        ``boneage_rank_hi``: the central ``BONEAGE.INTERVALS.COVERAGE`` interval of its rank
        probabilities (the model's own, uncalibrated)."""
        results = [{"boneage": age} for age in self.age_head.predict_months(outputs)]
        if hasattr(self.age_head, "predict_interval"):
            lo, hi = self.age_head.predict_interval(outputs, self.interval_coverage)
            for r, a, b in zip(results, lo, hi):
                r["boneage_rank_lo"], r["boneage_rank_hi"] = a, b
        return results
