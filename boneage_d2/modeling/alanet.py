"""ALA-Net (Anatomical Local-Aware Network): global + anatomical local + gender -> ordinal age.

Global feature: the pooled last backbone stage (as ``GlobalBoneAgeRegressor``). Local feature: an
RPN on ``MODEL.RPN.IN_FEATURES`` (``res4`` by default; the paper's "4th block" is ``res5``, see
docs/alanet.md) proposes anatomical ROIs, the top ``NUM_ROIS`` go through ROIAlign and a shared
4conv+1fc head, and are max-pooled. Fusion MLP + ordinal head (Eq. 1). Training adds anatomical
patch training and the RPN loss: ``loss_ord + loss_patch + loss_rpn_cls + loss_rpn_loc`` (Eq. 2).
"""

from __future__ import annotations

import torch
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling import META_ARCH_REGISTRY, Backbone
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.modeling.proposal_generator import build_proposal_generator
from detectron2.modeling.roi_heads import build_roi_heads
from detectron2.structures import Boxes, Instances
from torch import Tensor, nn

from ..schema import NO_HAND_FLAG
from .anatomical_roi_heads import max_pool_per_image
from .global_regressor import GlobalBoneAgeRegressor
from .inputs import boneage_targets, check_backbone_feature, male_tensor

__all__ = ["ALANet"]


@META_ARCH_REGISTRY.register()
class ALANet(GlobalBoneAgeRegressor):
    """ALA-Net. Inputs as ``GlobalBoneAgeRegressor`` plus, in training, ``roi_instances`` (the
    drawn or keypoint-derived ROI boxes from ``BoneAgeDatasetMapper``).

    Training returns ``loss_ord``, ``loss_patch`` (patch training on), ``loss_rpn_cls`` and
    ``loss_rpn_loc`` (RPN on). Inference returns per image ``boneage`` (months) and
    ``boneage_rank_lo`` / ``boneage_rank_hi`` (the ordinal head's own interval) and
    ``instances``: the top ``NUM_ROIS`` ROI boxes in original-image pixels, best first (with
    ``AnatomicalRPN``, ties broken by the box in every runtime), with ``scores``
    (objectness probability), ``pred_classes`` (0: one class-agnostic ROI category) and, with a
    patch head, ``patch_boneage`` (each ROI's own age estimate, months); and ``flags``:
    ``["no_hand_found"]`` when the ROIs' mean objectness is below ``NO_HAND_MEAN_SCORE``.
    """

    @configurable
    def __init__(
        self,
        *,
        local_in_feature: str,
        local_reducer: nn.Module | None,
        proposal_generator: nn.Module | None,
        roi_heads: nn.Module | None,
        num_rois: int = 17,
        use_local_feature: bool = True,
        age_on: bool = True,
        no_hand_mean_score: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.no_hand_mean_score = no_hand_mean_score
        self.local_in_feature = local_in_feature
        self.local_reducer = local_reducer
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads
        self.num_rois = num_rois
        self.use_local_feature = use_local_feature
        self.age_on = age_on

    @classmethod
    def age_head_in_dim(cls, cfg, backbone: Backbone) -> int:
        local = cfg.MODEL.ROI_BOX_HEAD.FC_DIM if cfg.BONEAGE.ALANET.LOCAL_FEATURE else 0
        return super().age_head_in_dim(cfg, backbone) + local

    @classmethod
    def from_config(cls, cfg) -> dict:
        ret = super().from_config(cfg)
        backbone, a = ret["backbone"], cfg.BONEAGE.ALANET
        name = cfg.MODEL.RPN.IN_FEATURES[0]
        if list(cfg.MODEL.RPN.IN_FEATURES) != [name] or list(cfg.MODEL.ROI_HEADS.IN_FEATURES) != [
            name
        ]:
            raise ValueError(
                "ALA-Net reads one local feature map: MODEL.RPN.IN_FEATURES and "
                f"MODEL.ROI_HEADS.IN_FEATURES must both be [{name!r}], got "
                f"{list(cfg.MODEL.RPN.IN_FEATURES)} and {list(cfg.MODEL.ROI_HEADS.IN_FEATURES)}"
            )
        if cfg.MODEL.ROI_BOX_HEAD.NUM_FC < 1:
            raise ValueError("ALA-Net's shared ROI head needs MODEL.ROI_BOX_HEAD.NUM_FC >= 1")
        check_backbone_feature(backbone, name, "MODEL.RPN.IN_FEATURES")
        shape = backbone.output_shape()[name]
        reducer = None
        if a.LOCAL_CHANNELS > 0:
            reducer = Conv2d(
                shape.channels,
                a.LOCAL_CHANNELS,
                kernel_size=1,
                bias=False,
                norm=get_norm(cfg.MODEL.RESNETS.NORM, a.LOCAL_CHANNELS),
                activation=nn.ReLU(),
            )
            shape = ShapeSpec(channels=a.LOCAL_CHANNELS, stride=shape.stride)
        patch_on_proposals = a.PATCH_TRAINING and a.PATCH_ROIS == "proposals"
        needs_rpn = a.LOCAL_FEATURE or patch_on_proposals or not a.AGE_ON
        needs_roi_heads = a.LOCAL_FEATURE or a.PATCH_TRAINING
        ret.update(
            local_in_feature=name,
            local_reducer=reducer,
            proposal_generator=build_proposal_generator(cfg, {name: shape}) if needs_rpn else None,
            roi_heads=build_roi_heads(cfg, {name: shape}) if needs_roi_heads else None,
            num_rois=a.NUM_ROIS,
            use_local_feature=a.LOCAL_FEATURE,
            age_on=a.AGE_ON,
            no_hand_mean_score=a.NO_HAND_MEAN_SCORE,
        )
        return ret

    def _local_maps(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        x = features[self.local_in_feature]
        if self.local_reducer is not None:
            x = self.local_reducer(x)
        return {self.local_in_feature: x}

    def _gt_rois(self, batched_inputs: list[dict]) -> list[Instances]:
        if any("roi_instances" not in x for x in batched_inputs):
            raise KeyError(
                "ALA-Net training needs 'roi_instances' in every input "
                "(BoneAgeDatasetMapper adds them from the hand keypoints)"
            )
        return [x["roi_instances"].to(self.device) for x in batched_inputs]

    def forward(self, batched_inputs: list[dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        local_maps = self._local_maps(features)
        gt_rois = self._gt_rois(batched_inputs) if self.training else None

        losses: dict[str, Tensor] = {}
        rois: list[Instances] = []
        if self.proposal_generator is not None:
            proposals, rpn_losses = self.proposal_generator(images, local_maps, gt_rois)
            losses.update(rpn_losses)
            rois = [p[: self.num_rois] for p in proposals]  # sorted by objectness
        ages = None
        if self.training and self.age_on:
            ages = boneage_targets(batched_inputs, self.device)
            rois, gt_rois = with_image_ages(rois, ages), with_image_ages(gt_rois, ages)
        if self.roi_heads is not None and self.age_on and (rois or self.training):
            rois, roi_losses = self.roi_heads(images, local_maps, rois, gt_rois)
            losses.update(roi_losses)

        outputs = None
        if self.age_on:
            parts = [self.global_feature(images, features)]
            if self.use_local_feature:
                feats = torch.cat([r.roi_features for r in rois])
                parts.append(max_pool_per_image(feats, [len(r) for r in rois]))
            if self.gender is not None:
                parts.append(self.gender(male_tensor(batched_inputs, self.device)))
            outputs = self.age_head(torch.cat(parts, dim=1))
        if self.training:
            if self.age_on:
                losses["loss_ord"] = self.age_head.losses(outputs, ages)
            return losses
        ages = self.age_results(outputs) if self.age_on else None
        return self._inference_results(batched_inputs, images, rois, ages)

    def _inference_results(self, batched_inputs, images, rois, ages) -> list[dict]:
        results = []
        for i, x in enumerate(batched_inputs):
            r: dict = dict(ages[i]) if ages is not None else {}
            if rois:
                inst = Instances(images.image_sizes[i])
                inst.pred_boxes = Boxes(rois[i].proposal_boxes.tensor)
                inst.scores = torch.sigmoid(rois[i].objectness_logits)
                inst.pred_classes = torch.zeros(len(inst), dtype=torch.int64, device=self.device)
                if rois[i].has("patch_boneage"):
                    inst.patch_boneage = rois[i].patch_boneage
                h, w = (
                    x.get("height", images.image_sizes[i][0]),
                    x.get("width", images.image_sizes[i][1]),
                )
                r["instances"] = detector_postprocess(inst, h, w)
                r["flags"] = self._flags(inst.scores)
            results.append(r)
        return results

    def _flags(self, roi_scores: Tensor) -> list[str]:
        """``["no_hand_found"]`` when the ROIs' mean objectness says there are no joints here."""
        mean = float(roi_scores.mean()) if len(roi_scores) else 0.0
        return [NO_HAND_FLAG] if mean < self.no_hand_mean_score else []


def with_image_ages(instances: list[Instances], ages: Tensor) -> list[Instances]:
    """Label every box of image i with its image's age ``ages[i]`` (``gt_boneage``, months): the
    target of anatomical patch training."""
    for inst, age in zip(instances, ages):
        inst.gt_boneage = age.repeat(len(inst))
    return instances
