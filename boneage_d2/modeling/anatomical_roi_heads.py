"""``AnatomicalROIHeads``: ALA-Net's anatomical local extraction and anatomical patch training.

ROIAlign over the anatomical ROIs and a shared ROI head (4 conv + 1 fc: Detectron2's
``FastRCNNConvFCHead`` from the box-head registry) give one feature per ROI; ALA-Net max-pools
them per image into its local feature (:func:`max_pool_per_image`). In training, an ordinal age
head on every ROI feature is anatomical patch training (loss ``loss_patch``); at inference it
gives each ROI its own age.
"""

from __future__ import annotations

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.roi_heads import ROIHeads, build_box_head
from detectron2.structures import Boxes, ImageList, Instances
from torch import Tensor, nn

from .age_head import OrdinalAgeHead

__all__ = ["AnatomicalROIHeads", "PATCH_ROI_SOURCES", "max_pool_per_image"]

PATCH_ROI_SOURCES = ("proposals", "annotated")


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
    """Shared ROI head over the anatomical ROIs; per-ROI features, ages and the patch loss.

    Detectron2's ROI-heads contract: ``forward(images, features, proposals, targets=None)``
    returns ``(rois, losses)``.

    - ``proposals``: per image the ROIs to read (``proposal_boxes``; ALA-Net passes the RPN's
      top ``NUM_ROIS``). For patch training on proposals they carry ``gt_boneage`` [R] (the
      image's age in months, repeated per box).
    - ``targets`` (training): per image the annotated ROI boxes (``gt_boxes``, ``gt_boneage``),
      the patch-training ROIs when ``patch_rois == "annotated"``. With ``"proposals"``, an image
      with no annotated box is unannotated (as for ``AnatomicalRPN``) and gives no patch loss.
    - ``rois``: ``proposals`` with ``roi_features`` [R, D] (always at inference; in training when
      ``local_feature_on``) and, at inference with a patch head, ``patch_boneage`` [R] (months).
    - ``losses``: ``{"loss_patch": ...}`` in training when patch training is on.
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
        local_feature_on: bool = True,
        patch_rois: str = "proposals",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if patch_rois not in PATCH_ROI_SOURCES:
            raise ValueError(
                f"BONEAGE.ALANET.PATCH_ROIS={patch_rois!r}; expected one of {PATCH_ROI_SOURCES}"
            )
        self.in_features = in_features
        self.pooler = pooler
        self.box_head = box_head
        self.patch_head = patch_head
        self.patch_loss_weight = patch_loss_weight
        self.local_feature_on = local_feature_on
        self.patch_rois = patch_rois

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
            local_feature_on=a.LOCAL_FEATURE,
            patch_rois=a.PATCH_ROIS,
        )
        return ret

    def roi_features(self, features: dict[str, Tensor], boxes: list[Boxes]) -> Tensor:
        """ROIAlign + shared head: [sum_i R_i, D]."""
        x = self.pooler([features[f] for f in self.in_features], boxes)
        return self.box_head(x)

    def forward(
        self,
        images: ImageList,
        features: dict[str, Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None = None,
    ) -> tuple[list[Instances], dict[str, Tensor]]:
        del images  # ROIs are in the padded image's pixels already
        counts = [len(p) for p in proposals]
        feats = None
        if self.local_feature_on or not self.training:
            feats = self.roi_features(features, [p.proposal_boxes for p in proposals])
            for p, chunk in zip(proposals, feats.split(counts)):
                p.roi_features = chunk
        losses: dict[str, Tensor] = {}
        if self.patch_head is not None and self.training:
            losses["loss_patch"] = self._patch_loss(features, proposals, targets, feats)
        elif self.patch_head is not None:
            months = self.patch_head.predict_months(self.patch_head(feats))
            for p, chunk in zip(proposals, months.split(counts)):
                p.patch_boneage = chunk
        return proposals, losses

    def _patch_loss(
        self,
        features: dict[str, Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None,
        proposal_feats: Tensor | None,
    ) -> Tensor:
        """Anatomical patch training: every ROI predicts its image's age (ordinal loss). Only
        images with annotated ROI boxes take part, as in the RPN loss: nothing says where an
        unannotated image's joints are, so its proposals are not trusted to be joints."""
        if self.patch_rois == "annotated":
            if targets is None:
                raise ValueError("patch training on annotated ROIs needs the targets")
            rois, boxes = targets, [t.gt_boxes for t in targets]
            feats = self.roi_features(features, boxes)
        else:
            if proposal_feats is None:
                proposal_feats = self.roi_features(features, [p.proposal_boxes for p in proposals])
            keep = [True] * len(proposals) if targets is None else [len(t) > 0 for t in targets]
            chunks = proposal_feats.split([len(p) for p in proposals])
            rois = [p for p, k in zip(proposals, keep) if k]
            feats = torch.cat([proposal_feats[:0]] + [c for c, k in zip(chunks, keep) if k])
        if any(not r.has("gt_boneage") for r in rois):
            raise ValueError("patch training needs 'gt_boneage' on every patch ROI")
        if sum(len(r) for r in rois) == 0:
            return feats.sum() * 0.0  # keeps every parameter in the graph
        ages = torch.cat([r.gt_boneage for r in rois])
        return self.patch_loss_weight * self.patch_head.losses(self.patch_head(feats), ages)
