"""Model A: Mask R-CNN hand segmentation + residual attention bone-age regressor (paper A).

``HandSegBoneAgeRCNN`` is Detectron2's ``GeneralizedRCNN`` (Mask R-CNN, one class ``hand``) with
a bone-age branch: the mapper's image (uint8, before normalisation and padding) is gated by a
hand mask (pixels outside the hand set to ``BACKGROUND_VALUE``), cropped to the hand box
(expanded to a square by default), resized to ``RAN.INPUT_SIZE`` squared, normalised with the
model's pixel mean/std and read by the residual attention network; its pooled feature and the
sex go to the final fully-connected layer (an age head of ``AGE_HEAD_REGISTRY``).

Loss (paper A Eq. 2): ``loss_cls + loss_box_reg + loss_mask`` (+ Detectron2's RPN losses) +
``loss_age`` (``BONEAGE.HEAD.REGRESSION_LOSS``: L1 by default, paper A's text; L2 = its Eq. 3).

Which mask gates the regressor's input (``TRAIN_MASK_SOURCE`` "gt" or "predicted", at the
ground-truth boxes through ``HandROIHeads``; ``MASK_GATING`` "hard" or "soft") decides what
``loss_age`` trains: only "predicted" + "soft" lets it reach the mask head and the backbone.
``docs/handseg_ran.md`` tabulates each setting. ``USE_SEGMENTATION: False`` (ablation): the
regressor sees the whole image; Mask R-CNN still trains and predicts.

``DETECTOR_SCALE`` < 1 runs Mask R-CNN on a downscaled copy of the image while the regressor
still crops the full-size image (boxes and masks are mapped back), so the hand crop keeps its
resolution at a fraction of the detector's cost (a hand is a large object).

Images without a hand (no or empty ``instances`` in training, no detection above
``HAND_SCORE_THRESH`` at inference) fall back to the whole image; at inference the output is
flagged ``"no_hand_found"``.
"""

from __future__ import annotations

import math

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY, Backbone, GeneralizedRCNN
from detectron2.structures import Boxes, ImageList, Instances
from detectron2.utils.events import get_event_storage
from torch import Tensor, nn

from ..schema import NO_HAND_FLAG
from . import attention_efficientnet  # noqa: F401  (registers the pretrained regressor)
from .age_head import build_age_head
from .detector_scale import box_scale_factors, scale_image, scale_instances
from .gender import GenderEmbedding
from .hand_crops import hand_crops, whole_image_crop
from .hand_roi_heads import HandROIHeads
from .inputs import (
    batch_images,
    boneage_targets,
    male_tensor,
    square_pad_size,
    with_empty_instances,
)
from .residual_attention import attention_maps_from_logits

__all__ = ["HandSegBoneAgeRCNN", "NO_HAND_FLAG", "largest_hand"]


def largest_hand(instances: Instances) -> Instances:
    """The ground-truth hand of largest mask area (box area for hands without masks), as a
    one-instance ``Instances``."""
    areas = (
        instances.gt_masks.tensor.flatten(1).sum(1)
        if instances.has("gt_masks")
        else instances.gt_boxes.area()
    )
    return instances[int(areas.argmax())]


TRAIN_MASK_SOURCES = ("gt", "predicted")
MASK_GATINGS = ("hard", "soft")
GENDER_FEATURES = ("bit", "embedding", "none")
MASK_THRESHOLD = 0.5  # binarisation of predicted mask probabilities (Detectron2's paste default)
REGRESSORS = ("build_residual_attention_backbone", "build_attention_efficientnet_lite_backbone")


def build_regressor(cfg) -> Backbone:
    """The bone-age regressor named by ``BONEAGE.HANDSEG.REGRESSOR`` (a ``BACKBONE_REGISTRY``
    builder): the paper's residual attention network (``BONEAGE.RAN``), or the pretrained
    EfficientNet-Lite trunk carrying attention modules (``BONEAGE.EFFICIENTNET``)."""
    name = cfg.BONEAGE.HANDSEG.REGRESSOR
    if name not in REGRESSORS:
        raise ValueError(f"BONEAGE.HANDSEG.REGRESSOR={name!r}; expected one of {REGRESSORS}")
    return BACKBONE_REGISTRY.get(name)(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))


def regressor_feature(regressor: Backbone) -> str:
    """The feature the regressor's age head pools: its last output (RAN ``stage4``,
    EfficientNet-Lite ``res5``)."""
    return regressor._out_features[-1]


@META_ARCH_REGISTRY.register()
class HandSegBoneAgeRCNN(GeneralizedRCNN):
    """Mask R-CNN for hands + residual attention bone-age regressor, trained end to end.

    Input: Detectron2's ``list[dict]`` from ``BoneAgeDatasetMapper``: ``image`` (uint8 [3, H, W]),
    ``male``, and in training ``boneage`` (months) and ``instances`` (hands: ``gt_boxes``,
    ``gt_classes``, ``gt_masks`` as BitMasks).

    Training returns the loss dict: Detectron2's ``loss_rpn_cls``, ``loss_rpn_loc``,
    ``loss_cls``, ``loss_box_reg``, ``loss_mask`` and ``loss_age``. Every ground-truth hand of an
    image (or the largest, ``TRAIN_ALL_HANDS: False``) is a regressor sample with the image's age;
    ``loss_age`` is the mean over those samples.

    Inference returns per image:

    - ``instances``: hands with ``pred_boxes``, ``scores``, ``pred_classes``, ``pred_masks`` in
      original image pixels (``detector_postprocess``) and ``boneage`` [N] (months; NaN for
      detections that were not assessed: below ``HAND_SCORE_THRESH``, beyond
      ``MAX_HANDS_TEST``, or all of them in the no-segmentation ablation);
    - ``boneage``: image-level age (0-dim tensor, months) of the top-scoring hand, or of the
      whole image when no hand was found or segmentation is off;
    - ``flags``: list of str, ``["no_hand_found"]`` when the whole image had to be used;
    - ``attention_maps``: ``{module name: [H', W']}`` channel-mean pre-sigmoid soft masks of the
      image-level regressor input (paper A Fig. 3), in the crop's frame;
    - ``attention_box``: [4] XYXY, original image pixels: the square region the regressor saw
      (the attention maps cover it; it may extend beyond the image).
    """

    @configurable
    def __init__(
        self,
        *,
        regressor: Backbone,
        age_head: nn.Module,
        gender_feature: str = "bit",
        gender_embed_dim: int = 32,
        use_segmentation: bool = True,
        train_mask_source: str = "gt",
        mask_gating: str = "hard",
        input_size: int = 224,
        background_value: float = 0.0,
        square_crop: bool = True,
        hand_score_thresh: float = 0.5,
        max_hands_test: int = 3,
        train_all_hands: bool = True,
        pad_square_size: int = 0,
        detector_scale: float = 1.0,
        **kwargs,
    ):
        """
        Args:
            regressor: the residual attention network (or another ``Backbone`` with
                ``forward_with_attention``); its last out feature is pooled.
            age_head: reads [pooled feature, sex feature] (the final fully-connected layer).
            pad_square_size: side of the fixed square the detector's input is padded to (in
                detector pixels, i.e. after ``detector_scale``); 0 = pad to the batch.
            others: see ``BONEAGE.HANDSEG.*`` and ``BONEAGE.RAN.INPUT_SIZE`` in config.py.
            kwargs: ``GeneralizedRCNN`` arguments (backbone, proposal_generator, roi_heads, ...).
        """
        super().__init__(**kwargs)
        for key, value, allowed in (
            ("TRAIN_MASK_SOURCE", train_mask_source, TRAIN_MASK_SOURCES),
            ("MASK_GATING", mask_gating, MASK_GATINGS),
            ("GENDER_FEATURE", gender_feature, GENDER_FEATURES),
        ):
            if value not in allowed:
                raise ValueError(f"BONEAGE.HANDSEG.{key}={value!r}; expected one of {allowed}")
        if train_mask_source == "predicted" and not isinstance(self.roi_heads, HandROIHeads):
            raise ValueError(
                "BONEAGE.HANDSEG.TRAIN_MASK_SOURCE='predicted' needs the mask head at given boxes: "
                "set MODEL.ROI_HEADS.NAME 'HandROIHeads'"
            )
        if use_segmentation and not getattr(self.roi_heads, "mask_on", False):
            raise ValueError(
                "BONEAGE.HANDSEG.USE_SEGMENTATION=True needs the mask head: set MODEL.MASK_ON True"
            )
        if not 0.0 < detector_scale <= 1.0:
            raise ValueError(
                f"BONEAGE.HANDSEG.DETECTOR_SCALE must be in (0, 1], got {detector_scale}"
            )
        if not hasattr(regressor, "forward_with_attention"):
            raise ValueError(
                f"the bone-age regressor {type(regressor).__name__} has no forward_with_attention"
            )
        self.regressor = regressor
        self.regressor_feature = regressor_feature(regressor)
        self.age_head = age_head
        self.gender_feature = gender_feature
        self.gender = GenderEmbedding(gender_embed_dim) if gender_feature == "embedding" else None
        self.use_segmentation = use_segmentation
        self.train_mask_source = train_mask_source
        self.mask_gating = mask_gating
        self.input_size = input_size
        self.background_value = background_value
        self.square_crop = square_crop
        self.hand_score_thresh = hand_score_thresh
        self.max_hands_test = max_hands_test
        self.train_all_hands = train_all_hands
        self.pad_square_size = pad_square_size
        self.detector_scale = detector_scale

    @staticmethod
    def sex_feature_dim(gender_feature: str, gender_embed_dim: int) -> int:
        """Width of the sex feature concatenated to the pooled RAN feature."""
        return {"bit": 1, "embedding": gender_embed_dim, "none": 0}[gender_feature]

    @classmethod
    def from_config(cls, cfg) -> dict:
        ret = super().from_config(cfg)
        h = cfg.BONEAGE.HANDSEG
        regressor = build_regressor(cfg)
        if h.GENDER_FEATURE not in GENDER_FEATURES:
            raise ValueError(
                f"BONEAGE.HANDSEG.GENDER_FEATURE={h.GENDER_FEATURE!r}; expected one of "
                f"{GENDER_FEATURES}"
            )
        in_dim = regressor.output_shape()[
            regressor_feature(regressor)
        ].channels + cls.sex_feature_dim(h.GENDER_FEATURE, cfg.BONEAGE.GENDER.EMBED_DIM)
        ret.update(
            regressor=regressor,
            age_head=build_age_head(cfg, in_dim),
            gender_feature=h.GENDER_FEATURE,
            gender_embed_dim=cfg.BONEAGE.GENDER.EMBED_DIM,
            use_segmentation=h.USE_SEGMENTATION,
            train_mask_source=h.TRAIN_MASK_SOURCE,
            mask_gating=h.MASK_GATING,
            input_size=cfg.BONEAGE.RAN.INPUT_SIZE,
            background_value=h.BACKGROUND_VALUE,
            square_crop=h.SQUARE_CROP,
            hand_score_thresh=h.HAND_SCORE_THRESH,
            max_hands_test=h.MAX_HANDS_TEST,
            train_all_hands=h.TRAIN_ALL_HANDS,
            pad_square_size=math.ceil(square_pad_size(cfg) * h.DETECTOR_SCALE),
            detector_scale=h.DETECTOR_SCALE,
        )
        return ret

    # ---------------------------------------------------------------- detector input
    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalise and batch as ``GeneralizedRCNN``, padded to the fixed square
        ``pad_square_size`` (``BONEAGE.INPUT.PAD_TO_SQUARE``) so detections do not depend on
        which images share the batch (GroupNorm sees the padding)."""
        scale = self.detector_scale
        images = [
            (scale_image(x["image"].to(self.device), scale) - self.pixel_mean) / self.pixel_std
            for x in batched_inputs
        ]
        return batch_images(images, self.backbone, self.pad_square_size)

    def _box_scale(self, image_size: tuple[int, int]) -> Tensor:
        """[4] factors from mapper-image to detector pixels (x, y, x, y)."""
        return box_scale_factors(image_size, self.detector_scale, self.device)

    def _detector_instances(self, instances: Instances) -> Instances:
        """Ground truth in detector pixels: boxes scaled, masks resized (area-weighted, >= 0.5)."""
        return scale_instances(instances, self.detector_scale)

    # ---------------------------------------------------------------- regressor
    def _crop_args(self) -> dict:
        return dict(size=self.input_size, background=self.background_value, square=self.square_crop)

    def _whole_image_input(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """The whole image as a regressor input: ([3, S, S] gated to the image area, [4] box)."""
        return whole_image_crop(image, **self._crop_args())

    def _hand_inputs(
        self, image: Tensor, boxes: Tensor, masks: Tensor, mask_boxes: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Regressor inputs for hands in one image (:func:`hand_crops`)."""
        return hand_crops(image, boxes, masks, mask_boxes, **self._crop_args())

    def _gate_predicted(self, probs: Tensor) -> Tensor:
        """Predicted mask probabilities -> the gate: binary (no gradient) or the probabilities."""
        if self.mask_gating == "hard":
            return (probs.detach() >= MASK_THRESHOLD).to(probs.dtype)
        return probs

    def regress(self, crops: Tensor, male: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Run the regressor on gated crops.

        Args:
            crops: [K, 3, S, S] in the mapper's pixel units (0..255).
            male: [K] 1.0 male, 0.0 female.
        Returns:
            (the age head's raw outputs for the K crops, ``{module: pre-sigmoid mask logits}``).
        """
        x = (crops - self.pixel_mean) / self.pixel_std
        features, logits = self.regressor.forward_with_attention(x)
        parts = [features[self.regressor_feature].mean(dim=(2, 3))]
        if self.gender_feature == "bit":
            parts.append((2.0 * male - 1.0)[:, None])
        elif self.gender_feature == "embedding":
            parts.append(self.gender(male))
        return self.age_head(torch.cat(parts, dim=1)), logits

    def _predicted_masks_at(
        self, features: dict[str, Tensor], hands: list[Instances | None]
    ) -> list[Tensor | None]:
        """The mask head's probabilities [K_i, M, M] at each image's hands' ``gt_boxes`` (given in
        the mapper image's pixels, pooled at their detector-pixel position); None for images
        without hands."""
        boxes = [
            Boxes(h.gt_boxes.tensor * self._box_scale(h.image_size))
            if h is not None
            else Boxes(torch.zeros((0, 4), device=self.device))
            for h in hands
        ]
        classes = [h.gt_classes for h in hands if h is not None]
        probs = self.roi_heads.mask_probabilities(features, boxes, torch.cat(classes))
        chunks = iter(probs.split([len(h) for h in hands if h is not None]))
        return [next(chunks) if h is not None else None for h in hands]

    def _training_hands(self, instances: Instances) -> Instances:
        """Ground-truth hands that become regressor samples (all, or the largest)."""
        if self.train_all_hands or len(instances) <= 1:
            return instances
        return largest_hand(instances)

    def _training_age_loss(self, batched_inputs, gt_instances, features) -> dict[str, Tensor]:
        ages = boneage_targets(batched_inputs, self.device)
        male = male_tensor(batched_inputs, self.device)
        crops, owners, num_fallback = [], [], 0
        hands = [
            self._training_hands(x) if self.use_segmentation and len(x) > 0 else None
            for x in gt_instances
        ]
        predicted = [None] * len(hands)
        if self.train_mask_source == "predicted" and any(h is not None for h in hands):
            predicted = self._predicted_masks_at(features, hands)
        for i, (x, hand, probs) in enumerate(zip(batched_inputs, hands, predicted)):
            image = x["image"].to(self.device).float()
            if hand is None:
                crop, _ = self._whole_image_input(image)
                crops.append(crop[None])
                owners.append(i)
                num_fallback += 1
                continue
            boxes = hand.gt_boxes.tensor
            if probs is not None:
                gates, mask_boxes = self._gate_predicted(probs), boxes
            elif hand.has("gt_masks"):
                gates, mask_boxes = hand.gt_masks.tensor, None
            else:  # a hand without a mask: its (square) box, gated to the image area only
                gates, mask_boxes = image.new_ones((len(boxes), *image.shape[-2:])), None
            crop, _ = self._hand_inputs(image, boxes, gates, mask_boxes)
            crops.append(crop)
            owners += [i] * len(crop)
        owners_t = torch.tensor(owners, device=self.device)
        outputs, _ = self.regress(torch.cat(crops), male[owners_t])
        storage = get_event_storage()
        storage.put_scalar("handseg/whole_image_fraction", num_fallback / len(batched_inputs))
        storage.put_scalar("handseg/regressor_samples", float(len(owners)))
        return {"loss_age": self.age_head.losses(outputs, ages[owners_t])}

    # ---------------------------------------------------------------- forward
    def forward(self, batched_inputs: list[dict]):
        """Training: the loss dict. Inference: see the class docstring."""
        if not self.training:
            return self.inference(batched_inputs)
        batched_inputs = [with_empty_instances(x) for x in batched_inputs]
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        detector_gt = [self._detector_instances(inst) for inst in gt_instances]
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, proposal_losses = self.proposal_generator(images, features, detector_gt)
        _, detector_losses = self.roi_heads(images, features, proposals, detector_gt)
        if self.vis_period > 0 and get_event_storage().iter % self.vis_period == 0:
            self.visualize_training(
                [{**x, "instances": gt} for x, gt in zip(batched_inputs, detector_gt)], proposals
            )
        losses = {**detector_losses, **proposal_losses}  # GeneralizedRCNN's order
        losses.update(self._training_age_loss(batched_inputs, gt_instances, features))
        return losses

    def inference(
        self,
        batched_inputs: list[dict],
        detected_instances: list[Instances] | None = None,
        do_postprocess: bool = True,
    ) -> list[dict]:
        """Detect and segment hands (``GeneralizedRCNN.inference``), then regress bone age.

        Returns one dict per image (class docstring). With ``do_postprocess=False`` the
        ``instances`` stay in the detector's coordinates (the mapper image's, times
        ``detector_scale``) with box-relative ``pred_masks`` [N, 1, M, M] (Detectron2's raw
        outputs) and ``attention_box`` is in the mapper image's pixels.
        """
        results = super().inference(batched_inputs, detected_instances, do_postprocess=False)
        male = male_tensor(batched_inputs, self.device)
        crops, owners, plans = [], [], []  # plans: (first crop index, hands, crop boxes)
        for i, (x, r) in enumerate(zip(batched_inputs, results)):
            image = x["image"].to(self.device).float()
            hands = self._hands_to_assess(r)
            r.boneage = torch.full((len(r),), math.nan, device=self.device)
            if len(hands):
                gates = self._gate_predicted(r.pred_masks[hands, 0])
                boxes = r.pred_boxes.tensor[hands] / self._box_scale(image.shape[-2:])
                crop, crop_boxes = self._hand_inputs(image, boxes, gates, boxes)
            else:
                crop, box = self._whole_image_input(image)
                crop, crop_boxes = crop[None], box[None]
            plans.append((len(owners), hands, crop_boxes))
            crops.append(crop)
            owners += [i] * len(crop)
        owners_t = torch.tensor(owners, device=self.device)
        outputs, logits = self.regress(torch.cat(crops), male[owners_t])
        ages = self.age_head.predict_months(outputs)

        processed = []
        for x, r, (start, hands, crop_boxes) in zip(batched_inputs, results, plans):
            if len(hands):
                r.boneage[hands] = ages[start : start + len(hands)]
            flags = [] if len(hands) or not self.use_segmentation else [NO_HAND_FLAG]
            box = crop_boxes[0]  # mapper-image pixels
            if do_postprocess:
                h, w = x["image"].shape[-2:]
                out = GeneralizedRCNN._postprocess([r], [x], [r.image_size])[0]
                box = box * box.new_tensor([x.get("width", w) / w, x.get("height", h) / h] * 2)
            else:
                out = {"instances": r}
            out.update(
                boneage=ages[start],
                flags=flags,
                attention_maps={
                    name: attention_maps_from_logits(t[start : start + 1])[0]
                    for name, t in logits.items()
                },
                attention_box=box,
            )
            processed.append(out)
        return processed

    def _hands_to_assess(self, r: Instances) -> Tensor:
        """Indices of the detections the regressor reads, best score first (empty when
        segmentation is off or no detection reaches ``hand_score_thresh``)."""
        if not self.use_segmentation or len(r) == 0:
            return torch.zeros((0,), dtype=torch.int64, device=self.device)
        # Given boxes (``detected_instances``) may come without scores: all count as hands.
        scores = r.scores if r.has("scores") else torch.ones(len(r), device=self.device)
        order = torch.argsort(scores, descending=True)
        order = order[scores[order] >= self.hand_score_thresh]
        return order[: self.max_hands_test]
