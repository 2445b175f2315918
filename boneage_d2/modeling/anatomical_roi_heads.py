"""``AnatomicalROIHeads``: ALA-Net's anatomical local extraction and anatomical patch training.

ROIAlign over the anatomical ROIs, a shared ROI head (4 conv + 1 fc: Detectron2's
``FastRCNNConvFCHead`` from the box-head registry), max-pooling across the ROI features of each
image (the local feature), and, in training, an ordinal age head on every ROI feature (patch
training, loss ``loss_patch``).
"""

from __future__ import annotations

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.roi_heads import ROIHeads, build_box_head
from detectron2.structures import Boxes
from torch import Tensor, nn

from .age_head import OrdinalAgeHead

__all__ = ["AnatomicalROIHeads", "max_pool_per_image"]


def max_pool_per_image(roi_features: Tensor, counts: list[int]) -> Tensor:
    """[R, D] ROI features, ``counts[i]`` of them for image i -> [N, D] max over each image's ROIs.

    An image with no ROI gets a zero vector (it then relies on its global feature alone).
    """
    out = roi_features.new_zeros((len(counts), roi_features.shape[1]))
    for i, chunk in enumerate(torch.split(roi_features, counts)):
        if len(chunk):
            out[i] = chunk.max(dim=0).values
    return out


@ROI_HEADS_REGISTRY.register()
class AnatomicalROIHeads(ROIHeads):
    """Shared ROI head over the anatomical ROIs; local feature and patch-training loss.

    ``forward(features, local_boxes, patch_boxes, ages)`` returns ``(local_feature, patch_ages,
    losses)``: the [N, D] max-pooled local feature (``None`` without ``local_boxes``), per-image
    [R_i] patch ages in months at inference (``None`` in training or without a patch head), and
    ``{"loss_patch": ...}`` in training when patch training is on.
    """

    @configurable
    def __init__(
        self,
        *,
        in_features: list[str],
        pooler: ROIPooler,
        box_head: nn.Module,
        patch_head: nn.Module | None,
        patch_loss_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_features = in_features
        self.pooler = pooler
        self.box_head = box_head
        self.patch_head = patch_head
        self.patch_loss_weight = patch_loss_weight

    @property
    def output_dim(self) -> int:
        """Width of the ROI features and of the local feature."""
        return self.box_head.output_shape.channels

    @classmethod
    def from_config(cls, cfg, input_shape: dict[str, ShapeSpec]) -> dict:
        ret = super().from_config(cfg)
        in_features = list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
        res = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
        channels = {input_shape[f].channels for f in in_features}
        if len(channels) != 1:
            raise ValueError(f"ROI_HEADS.IN_FEATURES {in_features} must share one channel count")
        box_head = build_box_head(cfg, ShapeSpec(channels=channels.pop(), height=res, width=res))
        a = cfg.BONEAGE.ALANET
        patch_head = None
        if a.PATCH_TRAINING:
            patch_head = OrdinalAgeHead(
                in_dim=box_head.output_shape.channels,
                hidden_dims=list(a.PATCH_HIDDEN_DIMS),
                num_ranks=cfg.BONEAGE.ORDINAL.NUM_RANKS,
                rank_width_months=cfg.BONEAGE.ORDINAL.RANK_WIDTH_MONTHS,
                formulation=cfg.BONEAGE.ORDINAL.FORMULATION,
                mean_months=cfg.BONEAGE.AGE_MEAN_MONTHS,
                std_months=cfg.BONEAGE.AGE_STD_MONTHS,
            )
        ret.update(
            in_features=in_features,
            pooler=ROIPooler(
                output_size=res,
                scales=tuple(1.0 / input_shape[f].stride for f in in_features),
                sampling_ratio=cfg.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO,
                pooler_type=cfg.MODEL.ROI_BOX_HEAD.POOLER_TYPE,
            ),
            box_head=box_head,
            patch_head=patch_head,
            patch_loss_weight=a.PATCH_LOSS_WEIGHT,
        )
        return ret

    def roi_features(self, features: dict[str, Tensor], boxes: list[Boxes]) -> Tensor:
        """ROIAlign + shared head: [sum_i R_i, D]."""
        x = self.pooler([features[f] for f in self.in_features], boxes)
        return self.box_head(x)

    def forward(
        self,
        features: dict[str, Tensor],
        local_boxes: list[Boxes] | None,
        patch_boxes: list[Boxes] | None = None,
        ages: Tensor | None = None,
    ):
        local = patch_ages = None
        losses: dict[str, Tensor] = {}
        local_feats = None
        if local_boxes is not None:
            local_feats = self.roi_features(features, local_boxes)
            local = max_pool_per_image(local_feats, [len(b) for b in local_boxes])
        if self.patch_head is None:
            return local, patch_ages, losses
        if self.training:
            if patch_boxes is None or ages is None:
                raise ValueError("patch training needs the patch ROIs and the image ages")
            counts = [len(b) for b in patch_boxes]
            same = patch_boxes is local_boxes and local_feats is not None
            feats = local_feats if same else self.roi_features(features, patch_boxes)
            if sum(counts) == 0:
                losses["loss_patch"] = feats.sum() * 0.0  # keeps every parameter in the graph
            else:
                targets = torch.repeat_interleave(ages, torch.as_tensor(counts, device=ages.device))
                loss = self.patch_head.losses(self.patch_head(feats), targets)
                losses["loss_patch"] = self.patch_loss_weight * loss
        elif local_feats is not None:
            months = self.patch_head.predict_months(self.patch_head(local_feats))
            patch_ages = list(torch.split(months, [len(b) for b in local_boxes]))
        return local, patch_ages, losses
