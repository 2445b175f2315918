"""Checks on a radiograph before any model reads it: named flags, not a silent number.

Torch-free and model-independent, so every model gets the same flags. Two are read from the
grey levels alone (``image_too_small``, ``blank_image``); the others from the hand tissue that
the converter's mask code (:func:`boneage_d2.convert.hand_masks.derive_hand_mask`) finds, at a
reduced working size so that a check stays a few tens of milliseconds:

- ``inverted_polarity``: most of the film is bright and its border (the background) is brighter
  than its centre: bright background, dark bones (a MONOCHROME1 film read without inverting);
- ``not_hand_radiograph``: no piece of hand-like tissue, or the largest one is nearly convex
  (a chest-like blob, not a hand with fingers);
- ``multiple_hands``: a second hand about as large as the first;
- ``hand_cut_by_border``: the hand touches two or more image sides (a forearm leaving the
  picture touches one);
- ``extreme_rotation``: the hand's long axis is far from the vertical (a film turned by 90 deg;
  the portrait or landscape shape of the film does not matter).

``docs/input_checks.md`` gives each flag's measured false-flag and miss rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..convert.hand_masks import HandMaskParams, derive_hand_mask
from ..schema import (
    BLANK_IMAGE_FLAG,
    BORDER_CUT_FLAG,
    INVERTED_FLAG,
    MULTIPLE_HANDS_FLAG,
    NOT_HAND_FLAG,
    ROTATION_FLAG,
    SMALL_IMAGE_FLAG,
)

__all__ = ["HandEvidence", "ImageChecks", "hand_evidence"]


@dataclass(frozen=True)
class HandEvidence:
    """What the hand mask says about one image (all sizes relative, angles in degrees).

    Attributes:
        border_level: median grey of a ring along the image border, as a share of the p1-p99
            range (0 = as dark as the darkest, 1 = as bright as the brightest).
        centre_level: the same for the central half of the image.
        median_level: the same for the whole image (a radiograph is mostly dark background).
        area_fraction: the largest hand's share of the image (0 when none).
        solidity: the largest hand's area over its convex hull's (a hand with fingers < 1).
        second_hand_ratio: the second largest hand's area over the largest's (0 when one).
        sides_touched: how many image sides the largest hand touches over a stretch.
        axis_angle_deg: angle between the largest hand's principal axis and the vertical
            (fingers up or down), in [0, 90].
        elongation: ratio of the principal axes' standard deviations (>= 1; ~1: no axis).
    """

    border_level: float
    centre_level: float
    median_level: float
    area_fraction: float
    solidity: float
    second_hand_ratio: float
    sides_touched: int
    axis_angle_deg: float
    elongation: float


def _levels(small: np.ndarray) -> tuple[float, float, float]:
    lo, hi = np.percentile(small, [1.0, 99.0])
    span = max(float(hi - lo), 1.0)
    h, w = small.shape
    b = max(1, round(0.05 * min(h, w)))
    ring = np.concatenate(
        [small[:b].ravel(), small[-b:].ravel(), small[:, :b].ravel(), small[:, -b:].ravel()]
    )
    centre = small[h // 4 : h - h // 4, w // 4 : w - w // 4]
    return (
        (float(np.median(ring)) - lo) / span,
        (float(np.median(centre)) - lo) / span,
        (float(np.median(small)) - lo) / span,
    )


def _sides_touched(hand: np.ndarray, min_share: float, band: int = 3) -> int:
    """Sides along which the hand covers ``min_share`` of the length within ``band`` px."""
    h, w = hand.shape
    edges = (
        hand[:band].any(0),
        hand[-band:].any(0),
        hand[:, :band].any(1),
        hand[:, -band:].any(1),
    )
    lengths = (w, w, h, h)
    return sum(int(np.count_nonzero(e) >= min_share * n) for e, n in zip(edges, lengths))


def _axis(hand: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(hand)
    if len(xs) < 3:
        return 0.0, 1.0
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    vals, vecs = np.linalg.eigh(cov)
    major = vecs[:, 1]  # (x, y) of the largest eigenvalue
    angle = float(np.degrees(np.arccos(np.clip(abs(major[1]), 0.0, 1.0))))
    return angle, float(np.sqrt(max(vals[1], 0.0) / max(vals[0], 1e-9)))


def hand_evidence(
    gray: np.ndarray, work_long_side: int = 256, border_share: float = 0.15
) -> HandEvidence:
    """Measure one uint8 [H, W] radiograph for :class:`ImageChecks` (one hand-mask pass).

    ``work_long_side``: the image is reduced to this long side first (the mask code's pixel
    sizes are scaled to it); ``border_share``: a side counts as touched when the hand covers at
    least this share of it.
    """
    h, w = gray.shape[:2]
    scale = work_long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    border_level, centre_level, median_level = _levels(small)
    mask = derive_hand_mask(small, _scaled_params(work_long_side)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = sorted(((int(stats[i, cv2.CC_STAT_AREA]), i) for i in range(1, n)), reverse=True)
    if not areas:
        return HandEvidence(border_level, centre_level, median_level, 0.0, 0.0, 0.0, 0, 0.0, 1.0)
    area, label = areas[0]
    hand = labels == label
    contours, _ = cv2.findContours(hand.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
    angle, elongation = _axis(hand)
    return HandEvidence(
        border_level=border_level,
        centre_level=centre_level,
        median_level=median_level,
        area_fraction=area / mask.size,
        solidity=min(1.0, area / max(hull, 1.0)),
        second_hand_ratio=areas[1][0] / area if len(areas) > 1 else 0.0,
        sides_touched=_sides_touched(hand, border_share),
        axis_angle_deg=angle,
        elongation=elongation,
    )


def _scaled_params(work_long_side: int) -> HandMaskParams:
    """The mask code's defaults (tuned at a 512-px long side) with pixel sizes scaled."""
    base = HandMaskParams()
    f = work_long_side / base.work_long_side

    def odd(v: int) -> int:
        return max(1, round(v * f)) | 1

    return HandMaskParams(
        work_long_side=work_long_side,
        blur_sigma=base.blur_sigma * f,
        line_max_gap=max(1, round(base.line_max_gap * f)),
        close_px=odd(base.close_px),
        open_px=odd(base.open_px),
        merge_gap_px=base.merge_gap_px * f,
        bridge_px=odd(base.bridge_px),
        tissue_ring_px=odd(base.tissue_ring_px),
        join_gap_px=base.join_gap_px * f,
    )


@dataclass(frozen=True)
class ImageChecks:
    """``BONEAGE.CHECKS``: thresholds of the model-independent input flags (0 = that check off).

    Attributes:
        min_side_px: shorter side below this: ``image_too_small``.
        min_range: 1st-99th percentile grey range below this: ``blank_image``.
        max_median_level: median grey above this share of the p1-p99 range (most of the film
            bright) with the border brighter than the centre by ``max_border_excess``:
            ``inverted_polarity``.
        max_border_excess: see ``max_median_level``.
        min_hand_fraction: largest hand below this share of the image: ``not_hand_radiograph``.
        max_solidity: largest hand's solidity above this (a convex blob): ``not_hand_radiograph``.
        min_second_hand: second hand at least this share of the first: ``multiple_hands``.
        max_sides_touched: hand touching more image sides than this: ``hand_cut_by_border``.
        max_axis_deg: hand axis further than this from the vertical (when the hand is
            elongated, ``min_elongation``): ``extreme_rotation``.
        work_long_side: long side (px) at which the hand checks run (speed vs detail).
    """

    min_side_px: int = 64
    min_range: float = 8.0
    max_median_level: float = 0.55
    max_border_excess: float = -0.05
    min_hand_fraction: float = 0.03
    max_solidity: float = 0.93
    min_second_hand: float = 0.5
    max_sides_touched: int = 1
    max_axis_deg: float = 55.0
    min_elongation: float = 1.3
    work_long_side: int = 256

    @classmethod
    def from_config(cls, cfg) -> ImageChecks:
        """Thresholds from ``cfg.BONEAGE.CHECKS``."""
        c = cfg.BONEAGE.CHECKS
        return cls(
            min_side_px=int(c.MIN_SIDE_PX),
            min_range=float(c.MIN_RANGE),
            max_median_level=float(c.MAX_MEDIAN_LEVEL),
            max_border_excess=float(c.MAX_BORDER_EXCESS),
            min_hand_fraction=float(c.MIN_HAND_FRACTION),
            max_solidity=float(c.MAX_SOLIDITY),
            min_second_hand=float(c.MIN_SECOND_HAND),
            max_sides_touched=int(c.MAX_SIDES_TOUCHED),
            max_axis_deg=float(c.MAX_AXIS_DEG),
            min_elongation=float(c.MIN_ELONGATION),
            work_long_side=int(c.WORK_LONG_SIDE),
        )

    @property
    def hand_checks_on(self) -> bool:
        """Whether any check needs the hand mask."""
        return bool(
            self.max_median_level
            or self.min_hand_fraction
            or self.max_solidity
            or self.min_second_hand
            or self.max_sides_touched
            or self.max_axis_deg
        )

    def flags(self, gray: np.ndarray) -> list[str]:
        """The flags of one uint8 [H, W] radiograph (the model's input), in a fixed order."""
        flags = []
        too_small = min(gray.shape[:2]) < self.min_side_px
        if too_small:
            flags.append(SMALL_IMAGE_FLAG)
        lo, hi = np.percentile(gray, [1.0, 99.0]) if gray.size else (0.0, 0.0)
        blank = hi - lo < self.min_range
        if blank:
            flags.append(BLANK_IMAGE_FLAG)
        if too_small or blank or not self.hand_checks_on or min(gray.shape[:2]) < 16:
            return flags  # nothing a hand check could read
        flags += self.hand_flags(hand_evidence(gray, self.work_long_side))
        if INVERTED_FLAG in flags:  # is it a hand once inverted? (a page of text is not)
            negative = self.hand_flags(hand_evidence(255 - gray, self.work_long_side))
            if NOT_HAND_FLAG in negative:
                flags[flags.index(INVERTED_FLAG)] = NOT_HAND_FLAG
        return flags

    def hand_flags(self, ev: HandEvidence) -> list[str]:
        """The hand-mask flags that ``ev`` raises under these thresholds."""
        flags = []
        bright_border = ev.border_level - ev.centre_level > self.max_border_excess
        if self.max_median_level and ev.median_level > self.max_median_level and bright_border:
            flags.append(INVERTED_FLAG)
            return flags  # the mask of an inverted film says nothing about the hand
        no_hand = self.min_hand_fraction and ev.area_fraction < self.min_hand_fraction
        blob = self.max_solidity and ev.area_fraction and ev.solidity > self.max_solidity
        if no_hand or blob:
            flags.append(NOT_HAND_FLAG)
            return flags
        if self.min_second_hand and ev.second_hand_ratio >= self.min_second_hand:
            flags.append(MULTIPLE_HANDS_FLAG)
        if self.max_sides_touched and ev.sides_touched > self.max_sides_touched:
            flags.append(BORDER_CUT_FLAG)
        if (
            self.max_axis_deg
            and ev.elongation >= self.min_elongation
            and ev.axis_angle_deg > self.max_axis_deg
        ):
            flags.append(ROTATION_FLAG)
        return flags
