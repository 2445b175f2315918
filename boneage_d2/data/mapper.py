"""``BoneAgeDatasetMapper``: dataset dict -> model input, labels carried through augmentation."""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Boxes, Instances

from ..io.intensity import IntensityPipeline
from ..io.radiograph import DEFAULT_MAX_PIXELS, ImageReadError, read_radiograph
from ..schema import roi_boxes_xyxy
from .bad_images import SKIPPED_IMAGES_KEY, BadImagePolicy
from .drawn_rois import has_drawn_rois, roi_instances_from_drawn
from .transforms import build_boneage_augmentation, linear_scale

__all__ = ["BoneAgeDatasetMapper", "radiograph_to_tensor", "roi_instances_from_keypoints"]

logger = logging.getLogger(__name__)


def roi_instances_from_keypoints(
    keypoints: np.ndarray, side: float, image_size: tuple[int, int]
) -> Instances:
    """Square ROI boxes of ``side`` pixels centred on each labelled keypoint, clipped to the image.

    Args:
        keypoints: [K, 3] (x, y, v) in Detectron2 (continuous) coordinates; v = 0 means
            unlabelled or transformed out of the image, and gets no box.
        image_size: (height, width).
    Returns:
        ``Instances`` with ``gt_boxes``, ``gt_classes`` (all 0: one class-agnostic category) and
        ``gt_landmarks`` (the landmark index of each box).
    """
    inst = Instances(image_size)
    keep = np.nonzero(keypoints[:, 2] > 0)[0] if len(keypoints) else np.zeros(0, dtype=int)
    xyxy, nonempty = roi_boxes_xyxy(keypoints[keep, :2], side, image_size[1], image_size[0])
    inst.gt_boxes = Boxes(torch.as_tensor(xyxy[nonempty], dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.zeros(int(nonempty.sum()), dtype=torch.int64)
    inst.gt_landmarks = torch.as_tensor(keep[nonempty], dtype=torch.int64)
    return inst


def radiograph_to_tensor(
    gray: np.ndarray, augmentations: T.AugmentationList
) -> tuple[torch.Tensor, T.Transform]:
    """A uint8 [H, W] radiograph -> the model's uint8 [3, H', W'] tensor (gray replicated to the
    3 channels the backbones read) after ``augmentations``, and the transforms applied."""
    aug_input = T.AugInput(np.repeat(gray[:, :, None], 3, axis=2))
    transforms = augmentations(aug_input)
    image = np.ascontiguousarray(aug_input.image.transpose(2, 0, 1))
    return torch.as_tensor(image), transforms


def _primary_keypoints(annos: list[dict]) -> np.ndarray:
    """Keypoints [K, 3] of the hand with the most labelled points (empty [0, 3] when none)."""
    best = np.zeros((0, 3))
    for a in annos:
        if "keypoints" in a:
            k = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            if (k[:, 2] > 0).sum() > (best[:, 2] > 0).sum():
                best = k
    return best


class BoneAgeDatasetMapper:
    """Reads the radiograph through the configured intensity pipeline
    (``BONEAGE.INPUT.INTENSITY``, the same as the predictor's), applies augmentations, and builds
    the model input.

    Output dict: the record's ``file_name``, ``image_id``, ``height``, ``width``, ``boneage``
    (months or None), ``male``, ``has_keypoints``, plus

    - ``image``: uint8 tensor [3, H, W] (the grayscale radiograph replicated to 3 channels);
    - ``instances`` (training): the hands, with ``gt_boxes`` (from the transformed mask when there
      is one: a rotated box would grow), ``gt_classes``, ``gt_masks`` and ``gt_keypoints`` when
      the record has them;
    - ``roi_instances`` (training): anatomical ROI boxes (``gt_boxes``, ``gt_classes`` = 0,
      ``gt_landmarks``): hand-drawn boxes transformed with the image, keeping their own size
      (:mod:`boneage_d2.data.drawn_rois`); else squares recomputed from the transformed keypoints
      of the annotated hand, their side scaled with the image;
    - ``skipped_images`` (training, only when > 0): how many unreadable images this mapper
      skipped (``on_bad_image="skip"``, returning None) since its previous output; see
      :mod:`boneage_d2.data.bad_images`.

    An unreadable image raises ``ImageReadError`` naming the file in test mode whatever
    ``on_bad_image`` says: an evaluation must cover every image of its set.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: list,
        use_masks: bool = True,
        use_keypoints: bool = True,
        on_bad_image: str = "skip",
        intensity: IntensityPipeline | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        self.is_train = is_train
        self.intensity = intensity or IntensityPipeline()
        self.max_pixels = max_pixels
        self.bad_images = BadImagePolicy(on_bad_image)
        self.augmentations = T.AugmentationList(augmentations)
        self.use_masks = use_masks
        self.use_keypoints = use_keypoints
        mode = "train" if is_train else "test"
        logger.info(
            f"[BoneAgeDatasetMapper] {mode} augmentations: {augmentations}; {self.intensity}"
        )

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        return {
            "is_train": is_train,
            "augmentations": build_boneage_augmentation(cfg, is_train),
            "use_masks": cfg.MODEL.MASK_ON,
            "use_keypoints": True,
            "on_bad_image": cfg.BONEAGE.DATA.ON_BAD_IMAGE,
            "intensity": IntensityPipeline.from_config(cfg),
            "max_pixels": cfg.BONEAGE.INPUT.MAX_PIXELS,
        }

    def __call__(self, dataset_dict: dict) -> dict | None:
        d = copy.deepcopy(dataset_dict)
        try:
            gray = read_radiograph(d["file_name"], self.intensity, self.max_pixels)
        except ImageReadError as e:
            if not self.is_train:
                raise
            self.bad_images.handle(d["file_name"], e)
            return None  # MapDataset maps another index instead
        skipped = self.bad_images.take_skipped()
        if skipped:
            d[SKIPPED_IMAGES_KEY] = skipped
        utils.check_image_size(d, gray)
        d["image"], transforms = radiograph_to_tensor(gray, self.augmentations)
        image_size = tuple(d["image"].shape[-2:])

        annos = d.pop("annotations", [])
        drawn = d.pop("roi_annotations", None) if has_drawn_rois(d) else None
        d.pop("roi_annotations", None)  # keypoint-derived: recomputed from the keypoints
        if not self.is_train:
            return d
        annos = self._transform_annotations(annos, transforms, image_size)
        d["instances"] = self._hand_instances(annos, image_size)
        if drawn is not None:
            d["roi_instances"] = roi_instances_from_drawn(drawn, transforms, image_size)
            return d
        side = d.get("roi_size", 0.0) * linear_scale(transforms)
        d["roi_instances"] = roi_instances_from_keypoints(
            _primary_keypoints(annos), side, image_size
        )
        return d

    def _transform_annotations(self, annos: list[dict], transforms, image_size) -> list[dict]:
        annos = [a for a in annos if a.get("iscrowd", 0) == 0]
        num_kpts = max((len(a.get("keypoints", ())) // 3 for a in annos), default=0)
        flip_indices = np.arange(num_kpts)  # hands: a flipped landmark keeps its identity
        return [
            utils.transform_instance_annotations(
                a, transforms, image_size, keypoint_hflip_indices=flip_indices
            )
            for a in annos
        ]

    def _hand_instances(self, annos: list[dict], image_size) -> Instances:
        drop = set()
        if not self.use_masks:
            drop.add("segmentation")
        if not self.use_keypoints:
            drop.add("keypoints")
        annos = [{k: v for k, v in a.items() if k not in drop} for a in annos]
        instances = utils.annotations_to_instances(annos, image_size, mask_format="bitmask")
        if instances.has("gt_masks"):
            instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
        return utils.filter_empty_instances(instances)
