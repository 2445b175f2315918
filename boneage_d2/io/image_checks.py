"""Checks on a radiograph before any model reads it: flags, not a silent number.

Torch-free and model-independent, so every model gets the same flags: an image too small to hold
a readable hand, or one with (almost) no contrast at all (a blank or saturated film).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..schema import BLANK_IMAGE_FLAG, SMALL_IMAGE_FLAG

__all__ = ["ImageChecks"]


@dataclass(frozen=True)
class ImageChecks:
    """``BONEAGE.CHECKS``: thresholds of the model-independent input flags.

    Attributes:
        min_side_px: an image whose shorter side is below this is ``image_too_small`` (real
            hand films are hundreds of pixels on a side; 0 = never).
        min_range: an image whose 1st-99th percentile range is below this many grey levels is
            ``blank_image`` (0 = never).
    """

    min_side_px: int = 64
    min_range: float = 8.0

    @classmethod
    def from_config(cls, cfg) -> ImageChecks:
        c = cfg.BONEAGE.CHECKS
        return cls(min_side_px=int(c.MIN_SIDE_PX), min_range=float(c.MIN_RANGE))

    def flags(self, gray: np.ndarray) -> list[str]:
        """The flags of one uint8 [H, W] radiograph (the model's input), in a fixed order."""
        flags = []
        if min(gray.shape[:2]) < self.min_side_px:
            flags.append(SMALL_IMAGE_FLAG)
        lo, hi = np.percentile(gray, [1.0, 99.0]) if gray.size else (0.0, 0.0)
        if hi - lo < self.min_range:
            flags.append(BLANK_IMAGE_FLAG)
        return flags
