"""Synthetic hand-radiograph phantom: the embedded default dataset of boneage-d2.

:func:`generate_phantom_dataset` writes the raw RSNA-style layout described in ``docs/data.md``
(three CSV/xlsx label files with their published headers, PNG folders, BoNet-style keypoint jsons,
``masks/<id>_mask.png`` and ``phantom_truth.json``), so the converter is exercised end to end.

Each image shows a left hand (PA view; sometimes mirrored) whose bones encode the age (see
:mod:`boneage_d2.phantom.anatomy`: epiphyses, growth-plate gaps that close in adolescence,
carpal ossification centres, the thumb sesamoid). Girls mature earlier: the bones show the
*maturity* ``age * female_maturity_factor`` (male-equivalent months), so sex is needed to read
the age. Hand size, position, rotation, finger spread and image size are random and independent
of age, so the outline of the hand does not give the age away. Optional distractors (L/R tags,
letters, rulers, collimation borders, a second partial hand, noise, exposure changes) test that a
model looks at the bones.

Determinism: every image is drawn from its own generator seeded by ``(seed, image_id)``, so the
output is byte-identical for the same seed and config, whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import io
import math
import multiprocessing as mp
import os
import re
import string
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..io.atomic import atomic_open, atomic_write_json
from ..schema import CANONICAL_17, HAND_CATEGORY_ID, coco_categories
from .anatomy import MAX_MATURITY_MONTHS, HandModel, build_hand, sample_hand_variation

__all__ = [
    "DEFAULT_DISTRACTOR_PROBS",
    "DISTRACTOR_KINDS",
    "SPLIT_FILES",
    "PhantomConfig",
    "PhantomSample",
    "generate_phantom_dataset",
    "maturity_months",
    "draw_label",
    "draw_subject",
    "render_phantom",
    "sample_phantom",
    "split_ids",
]

# Distractor names as recorded in phantom_truth.json, in the order they are drawn.
DISTRACTOR_KINDS: tuple[str, ...] = (
    "border",
    "second_hand",
    "ruler",
    "tag",
    "letters",
    "noise",
    "exposure",
)
DEFAULT_DISTRACTOR_PROBS: dict[str, float] = {
    "border": 0.35,  # bright collimation frame with a glow, darker outside
    "second_hand": 0.3,  # the other hand, partly visible at a side edge (a labelled hand)
    "ruler": 0.25,  # bright bar with ticks
    "tag": 0.5,  # L/R marker plate with initials
    "letters": 0.3,  # free bright letters/digits
    "noise": 0.3,  # strong Gaussian noise
    "exposure": 0.35,  # strong contrast/gamma/offset change (washed-out or dark films)
}

# Raw layout file names (docs/data.md): split -> (csv, image folder, keypoint json).
SPLIT_FILES: dict[str, tuple[str, str, str]] = {
    "train": (
        "boneage-training-dataset.csv",
        "boneage-training-dataset",
        "RSNA_Anatomical_ROIs_Training.json",
    ),
    "val": (
        "Validation Dataset.csv",
        "boneage-validation-dataset",
        "RSNA_Anatomical_ROIs_Validation.json",
    ),
    "test": (
        "boneage-test-dataset.csv",
        "boneage-test-dataset",
        "RSNA_Anatomical_ROIs_Test.json",
    ),
}
TEST_GROUND_TRUTH_XLSX = "Bone age ground truth.xlsx"
TRUTH_JSON = "phantom_truth.json"
MASK_DIR = "masks"
FIRST_ID = 1000  # ids: train from 1000, then validation, then test (distinct, like RSNA)

_REFERENCE_LONG_SIDE = 512.0  # pixel sizes of blur, text etc. are given at this long side
_XLSX_FIXED_TIME = "2000-01-01T00:00:00Z"


@dataclass
class PhantomConfig:
    """Every knob of the phantom generator (defaults in brackets are what the demo uses).

    Image and pose (independent of age, so size and outline do not reveal it):
        image_long_side [512]: long side of every image (px).
        short_side_range [(0.70, 0.85)]: short side as a fraction of the long side.
        landscape_prob [0.15]: share of landscape images (the hand stays upright).
        hand_extent_range [(0.55, 0.90)]: the hand's nominal extent (fingertips to 5 cm of
            forearm) as a fraction of the image height (random zoom/magnification).
        max_rotation_deg [10]: hand rotation, uniform in +-this.
        mirror_prob [0.1]: share of mirrored hands (a right hand / flipped film); landmark
            identities are kept (no flip map).
    Labels:
        male_prob [0.54]: share of boys (RSNA).
        age_distribution ["normal"]: "normal" (mean/sd below) or "uniform" (min..max).
        age_mean_months [127], age_sd_months [42], age_min_months [0], age_max_months [228].
        female_maturity_factor [1.12]: a girl of age a shows the bones of a boy of age
            ``1.12 a`` (clipped to 228 months).
        timing_jitter_months [4]: sd of each bone's own appearance/fusion time (biological
            scatter between the bones of one hand).
        label_noise_months [3]: label = appearance age + N(0, this), clipped to the age range.
    Distractors:
        distractors [True]: False turns every distractor off (none is recorded).
        distractor_scale [1.0]: multiplies every probability below.
        distractor_probs [DEFAULT_DISTRACTOR_PROBS]: probability per kind (DISTRACTOR_KINDS);
            a kind missing from the dict is off.
    Look:
        noise_sigma [2.0]: baseline detector noise (grey levels).
        blur_sigma_px [0.7]: baseline blur at a 512-px long side (scaled with the image).
        png_compression [1]: cv2 PNG compression level (0-9; deterministic at any; 1 is fast).
    """

    image_long_side: int = 512
    short_side_range: tuple[float, float] = (0.70, 0.85)
    landscape_prob: float = 0.15
    hand_extent_range: tuple[float, float] = (0.55, 0.90)
    max_rotation_deg: float = 10.0
    mirror_prob: float = 0.1
    male_prob: float = 0.54
    age_distribution: str = "normal"
    age_mean_months: float = 127.0
    age_sd_months: float = 42.0
    age_min_months: float = 0.0
    age_max_months: float = 228.0
    female_maturity_factor: float = 1.12
    timing_jitter_months: float = 4.0
    label_noise_months: float = 3.0
    distractors: bool = True
    distractor_scale: float = 1.0
    distractor_probs: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_DISTRACTOR_PROBS)
    )
    noise_sigma: float = 2.0
    blur_sigma_px: float = 0.7
    png_compression: int = 1

    def validate(self) -> PhantomConfig:
        """Raise ``ValueError`` naming the field when a value is out of range; return self."""

        def check(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(
                    f"PhantomConfig.{name}: expected {what}, got {getattr(self, name)!r}"
                )

        check(self.image_long_side >= 64, "image_long_side", "an integer >= 64")
        lo, hi = self.short_side_range
        check(0.3 <= lo <= hi <= 1.0, "short_side_range", "0.3 <= low <= high <= 1")
        lo, hi = self.hand_extent_range
        check(0.2 <= lo <= hi <= 0.95, "hand_extent_range", "0.2 <= low <= high <= 0.95")
        check(0.0 <= self.landscape_prob <= 1.0, "landscape_prob", "a probability")
        check(0.0 <= self.mirror_prob <= 1.0, "mirror_prob", "a probability")
        check(0.0 <= self.male_prob <= 1.0, "male_prob", "a probability")
        check(0.0 <= self.max_rotation_deg <= 45.0, "max_rotation_deg", "0..45 degrees")
        check(self.age_distribution in ("normal", "uniform"), "age_distribution", "normal|uniform")
        check(
            0.0 <= self.age_min_months < self.age_max_months <= MAX_MATURITY_MONTHS,
            "age_max_months",
            f"0 <= age_min_months < age_max_months <= {MAX_MATURITY_MONTHS:g}",
        )
        check(self.age_sd_months > 0.0, "age_sd_months", "> 0")
        check(1.0 <= self.female_maturity_factor <= 1.5, "female_maturity_factor", "1..1.5")
        check(self.timing_jitter_months >= 0.0, "timing_jitter_months", ">= 0")
        check(self.label_noise_months >= 0.0, "label_noise_months", ">= 0")
        check(self.distractor_scale >= 0.0, "distractor_scale", ">= 0")
        unknown = sorted(set(self.distractor_probs) - set(DISTRACTOR_KINDS))
        if unknown:
            raise ValueError(
                f"PhantomConfig.distractor_probs: unknown kinds {unknown}; "
                f"known: {list(DISTRACTOR_KINDS)}"
            )
        for k, p in self.distractor_probs.items():
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"PhantomConfig.distractor_probs[{k!r}]: expected 0..1, got {p}")
        check(self.noise_sigma >= 0.0, "noise_sigma", ">= 0")
        check(self.blur_sigma_px >= 0.0, "blur_sigma_px", ">= 0")
        check(0 <= self.png_compression <= 9, "png_compression", "0..9")
        return self


def maturity_months(age_months: float, male: bool, female_factor: float = 1.12) -> float:
    """Skeletal maturity in male-equivalent months: what the bones of this child show.

    Boys: the age itself. Girls mature earlier: ``age * female_factor`` (default 1.12), clipped to
    228 months, so a girl of 120 months shows the bones of a boy of ~134 months.
    """
    m = float(age_months) * (1.0 if male else float(female_factor))
    return float(min(max(m, 0.0), MAX_MATURITY_MONTHS))


@dataclass
class PhantomSample:
    """One rendered phantom image and its ground truth (coordinates continuous, px).

    ``image`` and ``mask`` are ``HxW`` uint8 (mask 255 = any hand); ``hands`` as in
    ``phantom_truth.json`` (primary first); ``keypoints`` the primary hand's ``(17, 2)``
    landmarks; ``cues`` the maturity parameters behind the picture (not written to disk);
    ``px_per_mm`` the magnification of the hand frame (pixels per phantom millimetre).
    """

    image: np.ndarray
    mask: np.ndarray
    boneage: float
    appearance_age: float
    male: bool
    maturity_months: float
    keypoints: np.ndarray
    hands: list[dict[str, Any]]
    distractors: list[str]
    cues: dict[str, float]
    px_per_mm: float

    @property
    def height(self) -> int:
        """Image height in px."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in px."""
        return int(self.image.shape[1])


# ----------------------------------------------------------------------------------------------
# rasterisation


_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


class _Pose:
    """Similarity transform hand-frame mm (y up) -> continuous pixel coordinates (y down)."""

    def __init__(
        self, scale: float, angle_deg: float, mirror: bool, tx: float = 0.0, ty: float = 0.0
    ):
        a = math.radians(angle_deg)
        fx = -1.0 if mirror else 1.0
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        self.scale = scale
        self.mat = scale * rot @ np.array([[fx, 0.0], [0.0, -1.0]])
        self.t = np.array([tx, ty])

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        return pts @ self.mat.T + self.t

    def moved(self, tx: float, ty: float) -> _Pose:
        p = _Pose.__new__(_Pose)
        p.scale, p.mat, p.t = self.scale, self.mat, np.array([tx, ty])
        return p


def _to_cv(pts_px: np.ndarray) -> np.ndarray:
    """Continuous px -> fixed-point pixel-index coordinates for cv2 drawing (centre = +0.5)."""
    return np.round((pts_px - 0.5) * _ONE).astype(np.int32)


def _fill(img: np.ndarray, polys: list[np.ndarray], value: float, aa: bool = True) -> None:
    """Fill each polygon (one call each: cv2 fills several polygons with the even-odd rule)."""
    line = cv2.LINE_AA if aa else cv2.LINE_8
    for p in polys:
        cv2.fillPoly(img, [_to_cv(p)], float(value), line, _SHIFT)


def _hand_mask(hand: HandModel, pose: _Pose, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    _fill(mask, [pose(p) for p in hand.tissue], 255, aa=False)
    return mask


def _draw_bones(
    hand: HandModel, pose: _Pose, density: np.ndarray, cortex: np.ndarray, mm_px: float
) -> None:
    """Rasterise bones (uint8 density 0-255) and their cortex (uint8 0-255) in place."""
    outline_px = max(1, int(round(0.55 * mm_px)))
    for p0, p1, thick_mm, strength in hand.scars:
        a, b = _to_cv(pose(np.stack([p0, p1])))
        t = max(1, int(round(thick_mm * mm_px)))
        cv2.line(cortex, tuple(a), tuple(b), 255.0 * 0.55 * strength, t, cv2.LINE_AA, _SHIFT)
    polys_px = []
    for poly, dens in hand.bones:
        pp = pose(poly)
        polys_px.append(pp)
        _fill(density, [pp], 255.0 * min(dens, 1.0))
    cv2.polylines(
        cortex, [_to_cv(p) for p in polys_px], True, 255.0, outline_px, cv2.LINE_AA, _SHIFT
    )
    for line, thick_mm in hand.cortex_bands:
        t = max(1, int(round(thick_mm * mm_px)))
        cv2.polylines(cortex, [_to_cv(pose(line))], False, 255.0, t, cv2.LINE_AA, _SHIFT)


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]
) -> np.ndarray:
    """Smooth random field (~N(0,1)) of ``shape`` from a ``cells`` grid, cubic upsampling."""
    small = rng.standard_normal(cells).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _box_of(mask: np.ndarray) -> list[float] | None:
    """``[x, y, w, h]`` (continuous px) of the nonzero pixels of ``mask``; None if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        return None
    return [float(xs[0]), float(ys[0]), float(xs[-1] + 1 - xs[0]), float(ys[-1] + 1 - ys[0])]


def _place_hand(
    rng: np.random.Generator,
    hand: HandModel,
    cfg: PhantomConfig,
    shape: tuple[int, int],
    mirror: bool,
) -> _Pose:
    """Random zoom, rotation and position with the hand's nominal extent inside the image."""
    h, w = shape
    margin = 0.02 * max(h, w)
    tries = 50
    for _ in range(tries):
        angle = float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
        zoom = float(rng.uniform(*cfg.hand_extent_range))
        unit = _Pose(1.0, angle, mirror)
        ext = unit(hand.extent)
        span = ext.max(axis=0) - ext.min(axis=0)
        scale = zoom * h / span[1]
        # the hand must fit (wide spread hands in narrow images get a smaller zoom)
        scale = min(scale, (w - 2 * margin) / span[0], (h - 2 * margin) / span[1])
        pose = _Pose(scale, angle, mirror)
        ext = pose(hand.extent)
        lo, hi = ext.min(axis=0), ext.max(axis=0)
        tx = float(rng.uniform(margin - lo[0], max(margin - lo[0], w - margin - hi[0])))
        ty = float(rng.uniform(margin - lo[1], max(margin - lo[1], h - margin - hi[1])))
        pose = pose.moved(tx, ty)
        kp = pose(hand.keypoints)
        if (kp >= 1.0).all() and (kp[:, 0] <= w - 1.0).all() and (kp[:, 1] <= h - 1.0).all():
            return pose
    raise RuntimeError(f"could not place the hand inside a {w}x{h} image after {tries} tries")


def _place_second_hand(
    rng: np.random.Generator,
    hand2: HandModel,
    pose1: _Pose,
    primary_mask: np.ndarray,
    mirror: bool,
) -> tuple[_Pose, np.ndarray] | None:
    """Put the other hand partly into the image at the freer side edge, not touching the first.

    Returns its pose and mask, or None when there is no room (then no second hand is drawn).
    """
    h, w = primary_mask.shape
    box = _box_of(primary_mask)
    if box is None:
        return None
    free_left, free_right = box[0], w - (box[0] + box[2])
    right = free_right >= free_left
    free = max(free_left, free_right)
    gap = max(4.0, 0.015 * w)
    if free < 0.1 * w:
        return None
    guard = cv2.dilate(primary_mask, np.ones((3, 3), np.uint8), iterations=int(gap))
    # roughly parallel to the first hand, the forearm leaning away from it
    angle = float(rng.uniform(-12.0, 2.0)) if right else float(rng.uniform(-2.0, 12.0))
    pose = _Pose(pose1.scale * float(rng.uniform(0.9, 1.1)), angle, mirror)
    ext = pose(hand2.extent)
    lo, hi = ext.min(axis=0), ext.max(axis=0)
    ty = float(rng.uniform(0.25 * h, 0.75 * h)) - 0.5 * (lo[1] + hi[1])
    visible = float(rng.uniform(0.35, 0.9)) * (free - gap)
    for _ in range(6):
        if right:
            tx = w - visible - lo[0]
        else:
            tx = visible - hi[0]
        cand = pose.moved(tx, ty)
        m2 = _hand_mask(hand2, cand, (h, w))
        if np.count_nonzero(m2) < 0.01 * h * w:
            return None  # moving further out only makes it smaller
        # one connected piece (separate fingertips would read as several hands) off the first
        if not (m2 & guard).any() and cv2.connectedComponents(m2, connectivity=8)[0] == 2:
            return cand, m2
        visible *= 0.7
    return None


def _text_patch(rng: np.random.Generator, text_px: float, plate: bool, letter: str) -> np.ndarray:
    """A marker tag (plate + big letter + initials) or bare letters, as a float patch 0..1."""
    font = cv2.FONT_HERSHEY_DUPLEX if rng.random() < 0.6 else cv2.FONT_HERSHEY_SIMPLEX
    fs = text_px / 22.0
    th = max(1, int(round(text_px / 9.0)))
    initials = "".join(rng.choice(list(string.ascii_uppercase), size=int(rng.integers(2, 4))))
    lines = [(letter, fs, th)]
    if plate or rng.random() < 0.5:
        lines.append((initials, fs * 0.45, max(1, th // 2)))
    sizes = [cv2.getTextSize(t, font, s, k) for t, s, k in lines]
    pw = int(max(sz[0][0] for sz in sizes) + 0.5 * text_px)
    ph = int(sum(sz[0][1] + sz[1] for sz in sizes) + 0.6 * text_px)
    plate_img = np.zeros((ph, pw), np.uint8)
    text_img = np.zeros((ph, pw), np.uint8)
    if plate:
        cv2.rectangle(plate_img, (0, 0), (pw - 1, ph - 1), 255, -1, cv2.LINE_AA)
        r = max(2, int(text_px * 0.08))
        cv2.circle(plate_img, (pw // 2, max(r + 1, int(0.12 * text_px))), r, 60, -1, cv2.LINE_AA)
    y = int(0.3 * text_px)
    for (t, s, k), ((tw, tht), base) in zip(lines, sizes):
        y += tht
        cv2.putText(text_img, t, ((pw - tw) // 2, y), font, s, 255, k, cv2.LINE_AA)
        y += base + int(0.1 * text_px)
    plate_level = float(rng.uniform(0.12, 0.3))
    out = plate_img.astype(np.float32) * (plate_level / 255.0)
    return np.maximum(out, text_img.astype(np.float32) * (1.0 / 255.0))


def _ruler_patch(rng: np.random.Generator, length_px: int, width_px: int) -> np.ndarray:
    """A ruler: a moderately bright bar with bright ticks (every 5th and 10th longer)."""
    bar = np.full((width_px, length_px), 255, np.uint8)
    ticks = np.zeros((width_px, length_px), np.uint8)
    step = max(3, int(round(length_px / float(rng.uniform(30, 60)))))
    for i, x in enumerate(range(step, length_px - 1, step)):
        frac = 0.8 if i % 10 == 9 else 0.55 if i % 5 == 4 else 0.3
        cv2.line(ticks, (x, 0), (x, int(frac * width_px)), 255, 1, cv2.LINE_AA)
    level = float(rng.uniform(0.2, 0.4))
    return np.maximum(bar.astype(np.float32) * (level / 255.0), ticks.astype(np.float32) / 255.0)


def _rotate_patch(patch: np.ndarray, angle_deg: float) -> np.ndarray:
    h, w = patch.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos) + 2, int(h * cos + w * sin) + 2
    m[0, 2] += nw / 2.0 - w / 2.0
    m[1, 2] += nh / 2.0 - h / 2.0
    return cv2.warpAffine(patch, m, (nw, nh), flags=cv2.INTER_LINEAR)


def _paste_free(
    rng: np.random.Generator,
    canvas: np.ndarray,
    occupied: np.ndarray,
    patch: np.ndarray,
    gain: float,
) -> bool:
    """Add ``patch * gain`` at a random place where ``occupied`` is all zero; mark it occupied."""
    h, w = canvas.shape
    ph, pw = patch.shape
    if ph >= h or pw >= w:
        return False
    for _ in range(30):
        y = int(rng.integers(0, h - ph + 1))
        x = int(rng.integers(0, w - pw + 1))
        if not occupied[y : y + ph, x : x + pw].any():
            canvas[y : y + ph, x : x + pw] += patch * gain
            pad = max(2, int(0.01 * max(h, w)))
            occupied[max(0, y - pad) : y + ph + pad, max(0, x - pad) : x + pw + pad] = 1
            return True
    return False


def _draw_border(
    rng: np.random.Generator,
    bg: np.ndarray,
    overlay: np.ndarray,
    extent_box: np.ndarray,
    ref: float,
) -> None:
    """Collimation frame around the hand: bright lines with a glow, darker outside."""
    h, w = bg.shape
    lo, hi = extent_box
    pad = rng.uniform(0.02, 0.14, size=4) * ref
    x0, y0 = lo[0] - pad[0], lo[1] - pad[1]
    x1, y1 = hi[0] + pad[2], hi[1] + pad[3] + rng.uniform(0.0, 0.5) * h
    c = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    a = math.radians(float(rng.uniform(-3.0, 3.0)))
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) - c
    corners = corners @ rot.T + c
    inside = np.zeros((h, w), np.float32)
    cv2.fillPoly(inside, [_to_cv(corners)], 1.0, cv2.LINE_AA, _SHIFT)
    inside = cv2.GaussianBlur(inside, (0, 0), 0.004 * ref + 0.5)
    dark = float(rng.uniform(0.25, 0.75))
    bg *= dark + (1.0 - dark) * inside
    bg += float(rng.uniform(2.0, 12.0)) * inside
    lines = np.zeros((h, w), np.float32)
    t = max(1, int(round(float(rng.uniform(0.004, 0.012)) * ref)))
    cv2.polylines(lines, [_to_cv(corners)], True, 1.0, t, cv2.LINE_AA, _SHIFT)
    glow = cv2.GaussianBlur(lines, (0, 0), 0.012 * ref)
    overlay += float(rng.uniform(40.0, 100.0)) * (lines + 0.9 * glow)


def draw_label(cfg: PhantomConfig, rng: np.random.Generator, appearance_age: float) -> float:
    """The label a reader would give: ``appearance_age + N(0, label_noise_months)``, clipped.

    Clipped to ``[age_min_months, age_max_months]``; no draw is made when the noise is 0.
    """
    noise = float(rng.normal(0.0, cfg.label_noise_months)) if cfg.label_noise_months > 0 else 0.0
    return float(np.clip(appearance_age + noise, cfg.age_min_months, cfg.age_max_months))


def render_phantom(
    cfg: PhantomConfig, rng: np.random.Generator, appearance_age: float, male: bool
) -> PhantomSample:
    """Render one phantom radiograph of a child of ``appearance_age`` months and sex ``male``.

    The label is drawn here too (``appearance_age + N(0, label_noise_months)``, clipped).
    Returns a :class:`PhantomSample`; all randomness comes from ``rng``.
    """
    long_side = int(cfg.image_long_side)
    ref = long_side / _REFERENCE_LONG_SIDE
    short = int(round(long_side * float(rng.uniform(*cfg.short_side_range))))
    landscape = bool(rng.random() < cfg.landscape_prob)
    h, w = (short, long_side) if landscape else (long_side, short)
    shape = (h, w)
    boneage = draw_label(cfg, rng, appearance_age)
    mat = maturity_months(appearance_age, male, cfg.female_maturity_factor)

    # which distractors: one uniform draw per kind, always, before the hand is drawn, so the same
    # seed gives the same child, hand and pose with distractors on or off (clean/cluttered pairs)
    draws = rng.random(len(DISTRACTOR_KINDS))
    wanted = {
        k: bool(cfg.distractors)
        and u < min(1.0, cfg.distractor_probs.get(k, 0.0) * cfg.distractor_scale)
        for k, u in zip(DISTRACTOR_KINDS, draws)
    }

    var = sample_hand_variation(rng, cfg.timing_jitter_months)
    hand = build_hand(mat, var)
    mirror = bool(rng.random() < cfg.mirror_prob)
    pose = _place_hand(rng, hand, cfg, shape, mirror)
    mm_px = pose.scale
    mask1 = _hand_mask(hand, pose, shape)
    recorded: list[str] = []

    hands_drawn: list[tuple[HandModel, _Pose]] = [(hand, pose)]
    mask2 = None
    if wanted["second_hand"]:
        var2 = sample_hand_variation(rng, cfg.timing_jitter_months)
        hand2 = build_hand(mat, var2)
        placed = _place_second_hand(rng, hand2, pose, mask1, not mirror)
        if placed is not None:
            hands_drawn.append((hand2, placed[0]))
            mask2 = placed[1]
            recorded.append("second_hand")
    mask = mask1 if mask2 is None else np.maximum(mask1, mask2)

    # background: dark, not black, with low-frequency nonuniformity (heel effect, scatter)
    bg_level = float(rng.uniform(14.0, 42.0))
    bg = bg_level + float(rng.uniform(3.0, 9.0)) * _smooth_field(rng, shape, (4, 3))
    ga = float(rng.uniform(0.0, 2.0 * math.pi))
    gain = float(rng.uniform(0.0, 14.0))
    gx = (gain * math.cos(ga)) * (np.arange(w, dtype=np.float32) / w - 0.5)
    gy = (gain * math.sin(ga)) * (np.arange(h, dtype=np.float32) / h - 0.5)
    bg += gx[None, :] + gy[:, None]
    overlay = np.zeros(shape, np.float32)
    ext = pose(hand.extent)
    extent_box = np.stack([ext.min(axis=0), ext.max(axis=0)])
    if wanted["border"]:
        _draw_border(rng, bg, overlay, extent_box, long_side)
        recorded.append("border")

    # soft tissue: brighter where thicker (distance to the outline, in mm)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3) / mm_px
    edge = np.minimum(dist / 9.0, 1.0)
    thickness = 0.4 + 0.6 * np.sqrt(1.0 - (1.0 - edge) ** 2) + 0.3 * np.minimum(dist / 25.0, 1.0)
    tissue_amp = float(rng.uniform(35.0, 60.0))
    img = bg + tissue_amp * thickness * (mask > 0)

    # bones: density and cortex layers, trabecular texture in the medulla
    density = np.zeros(shape, np.uint8)
    cortex = np.zeros(shape, np.uint8)
    for hnd, ps in hands_drawn:
        _draw_bones(hnd, ps, density, cortex, mm_px)
    bone_amp = float(rng.uniform(70.0, 110.0))
    medulla = float(rng.uniform(0.5, 0.65))
    small = (max(2, h // 3), max(2, w // 3))
    tex = cv2.resize(
        rng.standard_normal(small).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR
    )
    dens = density.astype(np.float32) * (1.0 / 255.0)
    cort = cortex.astype(np.float32) * (1.0 / 255.0)
    img += bone_amp * dens * (medulla * (1.0 + 0.09 * tex) + (1.0 - medulla) * cort)

    # unlabelled bright markers placed where there is no hand
    occupied = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=max(2, int(6 * ref)))
    if wanted["ruler"]:
        length = int(float(rng.uniform(0.3, 0.6)) * (h if rng.random() < 0.6 else w))
        width = max(5, int(float(rng.uniform(0.022, 0.035)) * long_side))
        patch = _ruler_patch(rng, length, width)
        if length > w - 4 or rng.random() < 0.6:
            patch = np.ascontiguousarray(patch.T[:, ::-1] if rng.random() < 0.5 else patch.T)
        if _paste_free(rng, overlay, occupied, patch, float(rng.uniform(90.0, 160.0))):
            recorded.append("ruler")
    if wanted["tag"]:
        letter = "L" if rng.random() < 0.75 else "R"
        patch = _text_patch(rng, float(rng.uniform(0.06, 0.1)) * long_side, True, letter)
        patch = _rotate_patch(
            patch, float(rng.choice([0.0, 0.0, 90.0, -90.0, rng.uniform(-40, 40)]))
        )
        if _paste_free(rng, overlay, occupied, patch, float(rng.uniform(150.0, 210.0))):
            recorded.append("tag")
    if wanted["letters"]:
        chars = string.ascii_uppercase + string.digits
        text = "".join(rng.choice(list(chars), size=int(rng.integers(1, 4))))
        patch = _text_patch(rng, float(rng.uniform(0.035, 0.07)) * long_side, False, text)
        patch = _rotate_patch(patch, float(rng.uniform(-30.0, 30.0)))
        if _paste_free(rng, overlay, occupied, patch, float(rng.uniform(110.0, 200.0))):
            recorded.append("letters")
    # exposure: the hand's brightest bone maps to ``white``, zero attenuation to ``black``; mild
    # variation always, strong (washed-out grey or dark, low contrast) as a distractor. The
    # window keeps >= 90 grey levels for the hand so the bones stay readable.
    hand_peak = float(img[mask > 0].max()) if mask.any() else float(img.max())
    img += overlay
    if wanted["exposure"]:
        gamma = float(np.exp(rng.uniform(-0.45, 0.45)))
        black = float(rng.uniform(0.0, 100.0))
        white = min(255.0, black + float(rng.uniform(90.0, 200.0)))
        recorded.append("exposure")
    else:
        gamma = float(np.exp(rng.uniform(-0.12, 0.12)))
        black = float(rng.uniform(0.0, 6.0))
        white = float(rng.uniform(205.0, 245.0))
    img *= 1.0 / max(hand_peak, 1.0)
    np.clip(img, 0.0, 1.0, out=img)
    img = cv2.pow(img, gamma)
    img *= white - black
    img += black
    sigma_blur = cfg.blur_sigma_px * ref * float(rng.uniform(0.8, 1.3))
    if sigma_blur > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), sigma_blur)
    sigma_noise = cfg.noise_sigma * float(rng.uniform(0.6, 1.4))
    if wanted["noise"]:
        sigma_noise += float(rng.uniform(4.0, 10.0))
        recorded.append("noise")
    if sigma_noise > 0:
        img += sigma_noise * rng.standard_normal(shape, dtype=np.float32)
    np.clip(img, 0.0, 255.0, out=img)
    image = np.rint(img, out=img).astype(np.uint8)

    keypoints = pose(hand.keypoints)
    hands: list[dict[str, Any]] = [
        {
            "bbox": _box_of(mask1),
            "primary": True,
            "keypoints": [[round(float(x), 3), round(float(y), 3)] for x, y in keypoints],
        }
    ]
    if mask2 is not None:
        hands.append({"bbox": _box_of(mask2), "primary": False, "keypoints": []})
    recorded.sort(key=DISTRACTOR_KINDS.index)
    return PhantomSample(
        image=image,
        mask=np.where(mask > 0, 255, 0).astype(np.uint8),
        boneage=boneage,
        appearance_age=float(appearance_age),
        male=male,
        maturity_months=mat,
        keypoints=np.asarray(hands[0]["keypoints"], dtype=np.float64),
        hands=hands,
        distractors=recorded,
        cues=dict(hand.cues),
        px_per_mm=float(mm_px),
    )


def _image_rng(seed: int, image_id: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(image_id)]))


def draw_subject(cfg: PhantomConfig, rng: np.random.Generator) -> tuple[bool, float]:
    """Draw ``(male, appearance_age_months)``: sex with ``male_prob``, age from the configured
    distribution (normal ``age_mean_months`` +- ``age_sd_months`` clipped, or uniform)."""
    male = bool(rng.random() < cfg.male_prob)
    if cfg.age_distribution == "uniform":
        return male, float(rng.uniform(cfg.age_min_months, cfg.age_max_months))
    age = float(rng.normal(cfg.age_mean_months, cfg.age_sd_months))
    return male, float(np.clip(age, cfg.age_min_months, cfg.age_max_months))


def sample_phantom(cfg: PhantomConfig, seed: int, image_id: int) -> PhantomSample:
    """Draw sex and appearance age for ``image_id`` and render it (deterministic in seed, id)."""
    rng = _image_rng(seed, image_id)
    male, age = draw_subject(cfg, rng)
    return render_phantom(cfg, rng, age, male)


# ----------------------------------------------------------------------------------------------
# dataset writing


def split_ids(num_train: int, num_val: int, num_test: int) -> dict[str, list[int]]:
    """Integer image ids per split: train from 1000, then validation, then test (all distinct)."""
    out: dict[str, list[int]] = {}
    start = FIRST_ID
    for split, n in (("train", num_train), ("val", num_val), ("test", num_test)):
        out[split] = list(range(start, start + n))
        start += n
    return out


def _png_bytes(img: np.ndarray, compression: int, huffman_only: bool = False) -> bytes:
    """PNG bytes; Huffman-only coding suits noisy radiographs (faster and smaller there)."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]
    if huffman_only:
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
    ok, buf = cv2.imencode(".png", img, params)
    if not ok:
        raise OSError("cv2.imencode failed to encode a PNG")
    return buf.tobytes()


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def _render_and_write(task: tuple[PhantomConfig, int, str, int, str]) -> dict[str, Any]:
    """Worker: render one image, write its PNG and mask, return its truth record."""
    cfg, seed, root, image_id, split = task
    sample = sample_phantom(cfg, seed, image_id)
    root_p = Path(root)
    folder = SPLIT_FILES[split][1]
    image_png = _png_bytes(sample.image, cfg.png_compression, huffman_only=True)
    _write_bytes(root_p / folder / f"{image_id}.png", image_png)
    _write_bytes(
        root_p / MASK_DIR / f"{image_id}_mask.png", _png_bytes(sample.mask, cfg.png_compression)
    )
    return {
        "split": split,
        "width": sample.width,
        "height": sample.height,
        "boneage": sample.boneage,
        "appearance_age": sample.appearance_age,
        "male": sample.male,
        "hands": sample.hands,
        "distractors": sample.distractors,
    }


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core; no oversubscription


def _pool_context() -> mp.context.BaseContext:
    """A start method that is safe after cv2/torch started threads in this process.

    Plain ``fork`` copies a parent whose cv2 thread pool may be mid-job and deadlocks in the
    child; ``forkserver`` forks from a clean server that imported this module once (the package
    import is paid once per process, not once per worker as with ``spawn``).
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return mp.get_context("spawn")


def _keypoint_json(records: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """BoNet-style COCO keypoint json of one split (primary hand only, COCO convention)."""
    images, annos = [], []
    for k, (image_id, rec) in enumerate(records.items(), start=1):
        images.append(
            {
                "id": image_id,
                "file_name": f"{image_id}.png",
                "width": rec["width"],
                "height": rec["height"],
            }
        )
        hand = rec["hands"][0]
        kps: list[float] = []
        for x, y in hand["keypoints"]:
            kps += [round(x - 0.5, 3), round(y - 0.5, 3), 2]
        box = hand["bbox"]
        annos.append(
            {
                "id": k,
                "image_id": image_id,
                "category_id": HAND_CATEGORY_ID,
                "bbox": box,
                "area": float(box[2] * box[3]),
                "iscrowd": 0,
                "keypoints": kps,
                "num_keypoints": len(hand["keypoints"]),
            }
        )
    return {
        "images": images,
        "annotations": annos,
        "categories": coco_categories(CANONICAL_17, with_roi=False),
    }


def _fmt_bool(b: bool) -> str:
    return "True" if b else "False"


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(row) + "\n")


def _deterministic_xlsx(df_bytes: bytes) -> bytes:
    """Re-zip an openpyxl workbook with fixed timestamps so equal content gives equal bytes."""
    src = zipfile.ZipFile(io.BytesIO(df_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(
                    r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                    lambda m: m.group(1) + _XLSX_FIXED_TIME + m.group(3),
                    text,
                )
                data = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data)
    return out.getvalue()


def _write_ground_truth_xlsx(path: Path, rows: list[tuple[int, str, float]]) -> None:
    import pandas as pd

    df = pd.DataFrame(rows, columns=["Case ID", "Sex", "Ground truth bone age (months)"])
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        df.to_excel(writer, index=False, sheet_name="Sheet1")
    _write_bytes(path, _deterministic_xlsx(buf.getvalue()))


def generate_phantom_dataset(
    output_dir: str | os.PathLike,
    cfg: PhantomConfig,
    num_train: int,
    num_val: int,
    num_test: int,
    seed: int,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a phantom dataset in the raw RSNA layout of ``docs/data.md`` under ``output_dir``.

    Files: the three label files with their published headers (training ``id,boneage,male``
    True/False, validation ``Image ID,male,Bone Age (months)``, test ``Case ID,Sex`` M/F), the
    test ground truth ``Bone age ground truth.xlsx`` (one-decimal months), PNG folders,
    ``RSNA_Anatomical_ROIs_{Training,Validation,Test}.json`` (BoNet COCO keypoints of the primary
    hand, COCO convention = truth - 0.5), ``masks/<id>_mask.png`` (255 = any hand) and
    ``phantom_truth.json`` (continuous coordinates, unrounded labels). Training and validation
    ages are written as integer months, as RSNA publishes them.

    Same ``seed`` and ``cfg`` give byte-identical files for any ``workers``. ``workers > 1`` uses
    a process pool (``forkserver``; a calling script needs the usual ``if __name__ ==
    "__main__":`` guard); ``progress`` shows a tqdm bar. Every file is written atomically.
    Returns a summary dict (counts, id ranges, timing, distractor counts, label statistics).
    """
    cfg = dataclasses.replace(cfg, distractor_probs=dict(cfg.distractor_probs)).validate()
    for name, n in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
        if int(n) < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    ids = split_ids(int(num_train), int(num_val), int(num_test))
    tasks = [(cfg, int(seed), str(root), i, split) for split, lst in ids.items() for i in lst]
    for split in ids:
        (root / SPLIT_FILES[split][1]).mkdir(parents=True, exist_ok=True)
    (root / MASK_DIR).mkdir(parents=True, exist_ok=True)

    workers = max(1, min(int(workers), len(tasks)))  # never more processes than images
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="phantom", unit="img")
    results: list[dict[str, Any]] = []
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            results.append(_render_and_write(task))
            if bar is not None:
                bar.update(1)
    else:
        ctx = _pool_context()
        chunk = max(1, min(16, len(tasks) // (4 * workers)))
        with ctx.Pool(int(workers), initializer=_worker_init) as pool:
            for rec in pool.imap(_render_and_write, tasks, chunksize=chunk):
                results.append(rec)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    render_s = time.perf_counter() - t0

    truth_images: dict[str, dict[str, Any]] = {}
    by_split: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in ids}
    for (_, _, _, image_id, split), rec in zip(tasks, results):
        truth_images[str(image_id)] = rec
        by_split[split][image_id] = rec

    train_rows = [
        [str(i), str(int(round(r["boneage"]))), _fmt_bool(r["male"])]
        for i, r in by_split["train"].items()
    ]
    _write_csv(root / SPLIT_FILES["train"][0], ["id", "boneage", "male"], train_rows)
    val_rows = [
        [str(i), _fmt_bool(r["male"]), str(int(round(r["boneage"])))]
        for i, r in by_split["val"].items()
    ]
    _write_csv(root / SPLIT_FILES["val"][0], ["Image ID", "male", "Bone Age (months)"], val_rows)
    test_rows = [[str(i), "M" if r["male"] else "F"] for i, r in by_split["test"].items()]
    _write_csv(root / SPLIT_FILES["test"][0], ["Case ID", "Sex"], test_rows)
    _write_ground_truth_xlsx(
        root / TEST_GROUND_TRUTH_XLSX,
        [
            (i, "M" if r["male"] else "F", round(r["boneage"], 1))
            for i, r in by_split["test"].items()
        ],
    )
    for split, recs in by_split.items():
        atomic_write_json(root / SPLIT_FILES[split][2], _keypoint_json(recs))
    atomic_write_json(
        root / TRUTH_JSON,
        {
            "seed": int(seed),
            "num_keypoints": len(CANONICAL_17),
            "keypoint_names": list(CANONICAL_17),
            "images": truth_images,
        },
    )
    total_s = time.perf_counter() - t0

    n = len(results)
    counts = {k: sum(k in r["distractors"] for r in results) for k in DISTRACTOR_KINDS}
    ages = np.array([r["boneage"] for r in results]) if n else np.zeros(0)
    return {
        "output_dir": str(root),
        "seed": int(seed),
        "num_images": n,
        "splits": {s: len(v) for s, v in ids.items()},
        "id_ranges": {s: [v[0], v[-1]] if v else [] for s, v in ids.items()},
        "image_long_side": int(cfg.image_long_side),
        "workers": int(workers),
        "render_seconds": round(render_s, 3),
        "total_seconds": round(total_s, 3),
        "images_per_second": round(n / render_s, 2) if n and render_s > 0 else 0.0,
        "male_fraction": round(float(np.mean([r["male"] for r in results])), 4) if n else 0.0,
        "boneage_mean": round(float(ages.mean()), 3) if n else 0.0,
        "boneage_sd": round(float(ages.std()), 3) if n else 0.0,
        "distractor_counts": counts,
    }
