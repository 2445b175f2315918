"""Model A: Mask R-CNN hand segmentation + residual attention bone-age regressor (paper A).

``HandSegBoneAgeRCNN`` is Detectron2's ``GeneralizedRCNN`` (Mask R-CNN, one class ``hand``) with
a bone-age branch: the mapper's image (uint8, before normalisation and padding) is gated by a
hand mask (pixels outside the hand set to ``BACKGROUND_VALUE``), cropped to the hand box
(expanded to a square by default), resized to ``RAN.INPUT_SIZE`` squared, normalised with the
model's pixel mean/std and read by the residual attention network; its pooled feature and the
sex go to the final fully-connected layer (an age head of ``AGE_HEAD_REGISTRY``).

Loss (paper A Eq. 2): ``loss_cls + loss_box_reg + loss_mask`` (+ Detectron2's RPN losses) +
``loss_age`` (``BONEAGE.HEAD.REGRESSION_LOSS``: L1 by default, paper A's text; L2 = its Eq. 3).

Which mask gates the regressor's input, and what each setting trains:

- training, ``TRAIN_MASK_SOURCE: "gt"`` (paper A): the ground-truth masks. ``loss_age`` trains
  only the regressor (RAN + final FC); Mask R-CNN is trained by its own losses alone.
- training, ``"predicted"`` + ``MASK_GATING: "hard"``: the mask head's prediction at each
  ground-truth box, binarised at 0.5. The regressor learns on the masks it will see at test
  time; still no gradient from ``loss_age`` into Mask R-CNN.
- training, ``"predicted"`` + ``"soft"``: the mask probabilities gate the image, so
  ``loss_age`` also reaches the mask head and, through ROIAlign, the backbone/FPN: the
  segmentation is then shaped by what helps the age too (end-to-end in the strict sense).
- inference: the predicted masks of the detected hands, hard or soft as ``MASK_GATING``.
- ``USE_SEGMENTATION: False`` (ablation): the regressor sees the whole image (same square
  resize); Mask R-CNN still trains and predicts, but its masks do not reach the regressor.

``DETECTOR_SCALE`` < 1 runs Mask R-CNN on a downscaled copy of the image while the regressor
still crops the full-size image (boxes and masks are mapped back), so the hand crop keeps its
resolution at a fraction of the detector's cost (a hand is a large object).

Images without a hand (no or empty ``instances`` in training, no detection above
``HAND_SCORE_THRESH`` at inference) fall back to the whole image; at inference the output is
flagged ``"no_hand_found"``.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import BitMasks, Boxes, ImageList, Instances
from detectron2.utils.events import get_event_storage
from torch import Tensor, nn
from torchvision.ops import roi_align

from .age_head import build_age_head
from .gender import GenderEmbedding
from .inputs import batch_images, boneage_targets, male_tensor, square_pad_size
from .residual_attention import ResidualAttentionNetwork, attention_maps_from_logits

__all__ = [
    "HandSegBoneAgeRCNN",
    "NO_HAND_FLAG",
    "crop_and_resize",
    "gate_with_mask",
    "resample_box_masks",
    "square_boxes",
]

logger = logging.getLogger(__name__)

NO_HAND_FLAG = "no_hand_found"
TRAIN_MASK_SOURCES = ("gt", "predicted")
MASK_GATINGS = ("hard", "soft")
GENDER_FEATURES = ("bit", "embedding", "none")
MASK_THRESHOLD = 0.5  # binarisation of predicted mask probabilities (Detectron2's paste default)
REGRESSOR_FEATURE = "stage4"


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
        regressor: ResidualAttentionNetwork,
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
            regressor: the residual attention network; must output ``stage4``.
            age_head: reads [pooled stage4, sex feature] (the final fully-connected layer).
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
        if use_segmentation and not getattr(self.roi_heads, "mask_on", False):
            raise ValueError(
                "BONEAGE.HANDSEG.USE_SEGMENTATION=True needs the mask head: set MODEL.MASK_ON True"
            )
        if not 0.0 < detector_scale <= 1.0:
            raise ValueError(
                f"BONEAGE.HANDSEG.DETECTOR_SCALE must be in (0, 1], got {detector_scale}"
            )
        if REGRESSOR_FEATURE not in regressor.output_shape():
            raise ValueError(f"the bone-age regressor must output {REGRESSOR_FEATURE!r}")
        self.regressor = regressor
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
        ran_args = ResidualAttentionNetwork.from_config(cfg)
        ran_args["out_features"] = (REGRESSOR_FEATURE,)
        regressor = ResidualAttentionNetwork(**ran_args)
        if h.GENDER_FEATURE not in GENDER_FEATURES:
            raise ValueError(
                f"BONEAGE.HANDSEG.GENDER_FEATURE={h.GENDER_FEATURE!r}; expected one of "
                f"{GENDER_FEATURES}"
            )
        in_dim = regressor.output_shape()[REGRESSOR_FEATURE].channels + cls.sex_feature_dim(
            h.GENDER_FEATURE, cfg.BONEAGE.GENDER.EMBED_DIM
        )
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
        images = [
            (self._detector_image(x["image"]) - self.pixel_mean) / self.pixel_std
            for x in batched_inputs
        ]
        return batch_images(images, self.backbone, self.pad_square_size)

    def _detector_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(height, width) of the detector's copy of an image of ``image_size``."""
        h, w = image_size
        s = self.detector_scale
        return (max(1, round(h * s)), max(1, round(w * s))) if s != 1.0 else (h, w)

    def _detector_image(self, image: Tensor) -> Tensor:
        """The mapper's image [3, H, W] as the detector sees it (resized by ``detector_scale``)."""
        image = image.to(self.device)
        if self.detector_scale == 1.0:
            return image
        size = self._detector_size(image.shape[-2:])
        return F.interpolate(
            image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True
        )[0]

    def _box_scale(self, image_size: tuple[int, int]) -> Tensor:
        """[4] factors from mapper-image to detector pixels (x, y, x, y)."""
        dh, dw = self._detector_size(image_size)
        return torch.tensor(
            [dw / image_size[1], dh / image_size[0]] * 2, device=self.device, dtype=torch.float32
        )

    def _detector_instances(self, instances: Instances) -> Instances:
        """Ground truth in detector pixels: boxes scaled, masks resized (area-weighted, >= 0.5)."""
        if self.detector_scale == 1.0:
            return instances
        size = self._detector_size(instances.image_size)
        out = Instances(size)
        out.gt_boxes = Boxes(instances.gt_boxes.tensor * self._box_scale(instances.image_size))
        out.gt_classes = instances.gt_classes
        if instances.has("gt_masks"):
            masks = instances.gt_masks.tensor.float()
            if len(masks):
                masks = F.interpolate(masks[None], size=size, mode="area")[0]
            out.gt_masks = BitMasks(masks.new_zeros((0, *size)) if not len(masks) else masks >= 0.5)
        return out

    # ---------------------------------------------------------------- regressor
    def _crop_boxes(self, boxes: Tensor) -> Tensor:
        return square_boxes(boxes) if self.square_crop else boxes

    def _whole_image_input(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """The whole image as a regressor input: ([3, S, S] gated to the image area, [4] box)."""
        h, w = image.shape[-2:]
        box = self._crop_boxes(torch.tensor([[0.0, 0.0, w, h]], device=self.device))
        crop = crop_and_resize(image[None], box, self.input_size)
        inside = crop_and_resize(image.new_ones((1, 1, h, w)), box, self.input_size)[:, 0]
        return gate_with_mask(crop, inside, self.background_value)[0], box[0]

    def _hand_inputs(
        self, image: Tensor, boxes: Tensor, masks: Tensor, mask_boxes: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Regressor inputs for hands in one image.

        Args:
            image: [3, H, W] float, the mapper's pixel values.
            boxes: [K, 4] hand boxes (XYXY, that image's pixels).
            masks: [K, H, W] full-image masks (``mask_boxes`` None) or [K, M, M] masks over
                ``mask_boxes`` [K, 4] (Mask R-CNN's box-relative masks); values in [0, 1].
        Returns:
            ([K, 3, S, S] gated crops, [K, 4] crop boxes).
        """
        crop_boxes = self._crop_boxes(boxes)
        crops = crop_and_resize(image[None], crop_boxes, self.input_size)
        if mask_boxes is None:
            index = torch.arange(len(boxes), device=boxes.device)
            gates = crop_and_resize(masks[:, None].float(), crop_boxes, self.input_size, index)
            gates = gates[:, 0]
        else:
            gates = resample_box_masks(masks, mask_boxes, crop_boxes, self.input_size)
        return gate_with_mask(crops, gates, self.background_value), crop_boxes

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
        parts = [features[REGRESSOR_FEATURE].mean(dim=(2, 3))]
        if self.gender_feature == "bit":
            parts.append((2.0 * male - 1.0)[:, None])
        elif self.gender_feature == "embedding":
            parts.append(self.gender(male))
        return self.age_head(torch.cat(parts, dim=1)), logits

    def _predicted_masks_at(self, features: dict[str, Tensor], instances: list[Instances]):
        """The mask head's probabilities [sum K_i, M, M] at each image's ``gt_boxes`` (given in
        the mapper image's pixels; pooled at their detector-pixel position)."""
        roi_heads = self.roi_heads
        if getattr(roi_heads, "mask_pooler", None) is None:
            raise ValueError(
                "BONEAGE.HANDSEG.TRAIN_MASK_SOURCE='predicted' needs a pooled mask head "
                "(StandardROIHeads with ROI_MASK_HEAD.POOLER_TYPE set)"
            )
        boxes = [Boxes(x.gt_boxes.tensor * self._box_scale(x.image_size)) for x in instances]
        pooled = roi_heads.mask_pooler([features[f] for f in roi_heads.mask_in_features], boxes)
        logits = roi_heads.mask_head.layers(pooled)  # [K, C or 1, M, M]
        classes = torch.cat([x.gt_classes for x in instances]).clamp(max=logits.shape[1] - 1)
        index = torch.arange(len(logits), device=logits.device)
        return torch.sigmoid(logits[index, classes])

    def _training_hands(self, instances: Instances) -> Instances:
        """Ground-truth hands that become regressor samples (all, or the largest)."""
        if self.train_all_hands or len(instances) <= 1:
            return instances
        areas = (
            instances.gt_masks.tensor.flatten(1).sum(1)
            if instances.has("gt_masks")
            else instances.gt_boxes.area()
        )
        return instances[int(areas.argmax())]

    def _training_age_loss(self, batched_inputs, gt_instances, features) -> dict[str, Tensor]:
        ages = boneage_targets(batched_inputs, self.device)
        male = male_tensor(batched_inputs, self.device)
        crops, owners, num_fallback = [], [], 0
        hands = [
            self._training_hands(x) if self.use_segmentation and len(x) > 0 else None
            for x in gt_instances
        ]
        predicted = None
        if self.train_mask_source == "predicted" and any(h is not None for h in hands):
            probs = self._predicted_masks_at(features, [h for h in hands if h is not None])
            predicted = iter(probs.split([len(h) for h in hands if h is not None]))
        for i, (x, hand) in enumerate(zip(batched_inputs, hands)):
            image = x["image"].to(self.device).float()
            if hand is None:
                crop, _ = self._whole_image_input(image)
                crops.append(crop[None])
                owners.append(i)
                num_fallback += 1
                continue
            boxes = hand.gt_boxes.tensor
            if predicted is not None:
                gates, mask_boxes = self._gate_predicted(next(predicted)), boxes
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
        batched_inputs = [self._with_instances(x) for x in batched_inputs]
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        detector_inputs = [
            {**x, "instances": self._detector_instances(inst)}
            for x, inst in zip(batched_inputs, gt_instances)
        ]
        captured: dict[str, Tensor] = {}
        hook = self.backbone.register_forward_hook(lambda _m, _i, out: captured.update(out))
        try:
            losses = super().forward(detector_inputs)  # Mask R-CNN, its losses, visualisation
        finally:
            hook.remove()
        losses.update(self._training_age_loss(batched_inputs, gt_instances, captured))
        return losses

    @staticmethod
    def _with_instances(x: dict) -> dict:
        """The input with an empty ``instances`` if it has none (an image without hands)."""
        if x.get("instances") is not None:
            return x
        h, w = x["image"].shape[-2:]
        empty = Instances((h, w))
        empty.gt_boxes = Boxes(torch.zeros((0, 4)))
        empty.gt_classes = torch.zeros((0,), dtype=torch.int64)
        return {**x, "instances": empty}

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
