"""Augmentations: long-side resize with real scale jitter, and the per-model augmentation lists."""

from __future__ import annotations

import numpy as np
from detectron2.data import transforms as T
from fvcore.transforms.transform import TransformList
from PIL import Image

__all__ = ["LongSideResize", "build_boneage_augmentation", "linear_scale"]


class LongSideResize(T.Augmentation):
    """Resize so the long side is ``long_side * s``, ``s`` uniform in ``scale_range``.

    Unlike ``ResizeShortestEdge`` with a ``MAX_SIZE`` cap, the scale jitter survives for every
    aspect ratio (a short-side resize capped by a max size turns "random scale" into a no-op:
    short sides 384-576 all give 512 x 379 for a 757 x 1022 film).
    """

    def __init__(
        self, long_side: int, scale_range: tuple[float, float] = (1.0, 1.0), interp=Image.BILINEAR
    ):
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> T.Transform:
        h, w = image.shape[:2]
        lo, hi = self.scale_range
        target = self.long_side * (lo if hi <= lo else self._rand_range(lo, hi))
        scale = target / max(h, w)
        new_h, new_w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        return T.ResizeTransform(h, w, new_h, new_w, self.interp)


def linear_scale(transforms: TransformList) -> float:
    """How much the transforms scale lengths (1.0 for flips, rotations and crops)."""
    probe = transforms.apply_coords(np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]]))
    return float(
        (np.linalg.norm(probe[1] - probe[0]) + np.linalg.norm(probe[2] - probe[0])) / 200.0
    )


def build_boneage_augmentation(cfg, is_train: bool) -> list[T.Augmentation]:
    """Augmentations from ``cfg.BONEAGE.INPUT``.

    Test: long-side resize only. Train: long-side resize with random scale (ALA-Net), then the
    optional rotation and random crop (paper A), horizontal flip (both papers), and random
    contrast and brightness (off by default).
    """
    c = cfg.BONEAGE.INPUT
    if not is_train:
        return [LongSideResize(c.LONG_SIDE_TEST)]
    augs: list[T.Augmentation] = [LongSideResize(c.LONG_SIDE_TRAIN, tuple(c.RANDOM_SCALE))]
    if c.ROTATION_DEG > 0:
        augs.append(T.RandomRotation([-c.ROTATION_DEG, c.ROTATION_DEG], expand=False))
    if c.CROP_FRACTION < 1.0:
        augs.append(T.RandomCrop("relative_range", (c.CROP_FRACTION, c.CROP_FRACTION)))
    if c.HFLIP:
        augs.append(T.RandomFlip(horizontal=True, vertical=False))
    if tuple(c.CONTRAST) != (1.0, 1.0):
        augs.append(T.RandomContrast(*c.CONTRAST))
    if tuple(c.BRIGHTNESS) != (1.0, 1.0):
        augs.append(T.RandomBrightness(*c.BRIGHTNESS))
    return augs
