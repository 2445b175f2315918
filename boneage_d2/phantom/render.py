"""Render one phantom radiograph: the hand(s), soft tissue, bones, distractors and the film.

Every random draw comes from the image's own generator, in a fixed order (image shape, label,
distractor choice, hand, pose, ...), so the same seed always gives the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .anatomy import HandModel, build_hand, maturity_months, sample_hand_variation
from .config import DISTRACTOR_KINDS, REFERENCE_LONG_SIDE, PhantomConfig
from .distractors import add_markers, choose_distractors, draw_border, exposure_window, noise_sigma
from .placement import place_hand, place_second_hand
from .raster import Pose, box_of, draw_bones, hand_mask
from .subject import draw_label, draw_subject

__all__ = ["PhantomSample", "render_phantom", "sample_phantom"]


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


def _image_shape(cfg: PhantomConfig, rng: np.random.Generator) -> tuple[int, int]:
    """``(h, w)``: the configured long side, a random short side, mostly portrait."""
    long_side = int(cfg.image_long_side)
    short = int(round(long_side * float(rng.uniform(*cfg.short_side_range))))
    landscape = bool(rng.random() < cfg.landscape_prob)
    return (short, long_side) if landscape else (long_side, short)


def _pose_hands(
    cfg: PhantomConfig, rng: np.random.Generator, mat: float, shape: tuple[int, int], second: bool
) -> tuple[list[tuple[HandModel, Pose]], np.ndarray, np.ndarray | None]:
    """Build and place the primary hand (and the other hand when ``second`` and there is room).

    Returns the ``(hand, pose)`` pairs drawn (primary first), the primary mask and the second
    hand's mask (None when there is none).
    """
    hand = build_hand(mat, sample_hand_variation(rng, cfg.timing_jitter_months))
    mirror = bool(rng.random() < cfg.mirror_prob)
    pose = place_hand(rng, hand, cfg, shape, mirror)
    mask1 = hand_mask(hand, pose, shape)
    drawn = [(hand, pose)]
    if not second:
        return drawn, mask1, None
    hand2 = build_hand(mat, sample_hand_variation(rng, cfg.timing_jitter_months))
    placed = place_second_hand(rng, hand2, pose, mask1, not mirror)
    if placed is None:
        return drawn, mask1, None
    drawn.append((hand2, placed[0]))
    return drawn, mask1, placed[1]


def _smooth_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    cells: tuple[int, int],
    interpolation: int = cv2.INTER_CUBIC,
) -> np.ndarray:
    """Smooth random field (~N(0,1)) of ``shape``, upsampled from a ``cells`` grid."""
    small = rng.standard_normal(cells).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=interpolation)


def _background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Dark (not black) background with low-frequency nonuniformity (heel effect, scatter)."""
    h, w = shape
    bg_level = float(rng.uniform(14.0, 42.0))
    bg = bg_level + float(rng.uniform(3.0, 9.0)) * _smooth_field(rng, shape, (4, 3))
    ga = float(rng.uniform(0.0, 2.0 * math.pi))
    gain = float(rng.uniform(0.0, 14.0))
    gx = (gain * math.cos(ga)) * (np.arange(w, dtype=np.float32) / w - 0.5)
    gy = (gain * math.sin(ga)) * (np.arange(h, dtype=np.float32) / h - 0.5)
    bg += gx[None, :] + gy[:, None]
    return bg


def _soft_tissue(rng: np.random.Generator, mask: np.ndarray, mm_px: float) -> np.ndarray:
    """Soft-tissue brightness: higher where thicker (distance to the outline, in mm)."""
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3) / mm_px
    edge = np.minimum(dist / 9.0, 1.0)
    thickness = 0.4 + 0.6 * np.sqrt(1.0 - (1.0 - edge) ** 2) + 0.3 * np.minimum(dist / 25.0, 1.0)
    tissue_amp = float(rng.uniform(35.0, 60.0))
    return tissue_amp * thickness * (mask > 0)


def _bones(
    rng: np.random.Generator,
    drawn: list[tuple[HandModel, Pose]],
    shape: tuple[int, int],
    mm_px: float,
) -> np.ndarray:
    """Bone brightness: density and cortex layers, trabecular texture in the medulla."""
    h, w = shape
    density = np.zeros(shape, np.uint8)
    cortex = np.zeros(shape, np.uint8)
    for hand, pose in drawn:
        draw_bones(hand, pose, density, cortex, mm_px)
    bone_amp = float(rng.uniform(70.0, 110.0))
    medulla = float(rng.uniform(0.5, 0.65))
    tex = _smooth_field(rng, shape, (max(2, h // 3), max(2, w // 3)), cv2.INTER_LINEAR)
    dens = density.astype(np.float32) * (1.0 / 255.0)
    cort = cortex.astype(np.float32) * (1.0 / 255.0)
    return bone_amp * dens * (medulla * (1.0 + 0.09 * tex) + (1.0 - medulla) * cort)


def _expose(
    rng: np.random.Generator,
    cfg: PhantomConfig,
    img: np.ndarray,
    overlay: np.ndarray,
    mask: np.ndarray,
    wanted: dict[str, bool],
) -> np.ndarray:
    """The film: exposure window, blur and detector noise; returns the uint8 image.

    The hand's brightest bone maps to ``white`` and zero attenuation to ``black``; the
    overlay (border, markers) is added after the peak is taken so it may saturate.
    """
    hand_peak = float(img[mask > 0].max()) if mask.any() else float(img.max())
    img += overlay
    gamma, black, white = exposure_window(rng, wanted["exposure"])
    img *= 1.0 / max(hand_peak, 1.0)
    np.clip(img, 0.0, 1.0, out=img)
    img = cv2.pow(img, gamma)
    img *= white - black
    img += black
    ref = int(cfg.image_long_side) / REFERENCE_LONG_SIDE
    sigma_blur = cfg.blur_sigma_px * ref * float(rng.uniform(0.8, 1.3))
    if sigma_blur > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), sigma_blur)
    sigma_noise = noise_sigma(rng, cfg.noise_sigma, wanted["noise"])
    if sigma_noise > 0:
        img += sigma_noise * rng.standard_normal(img.shape, dtype=np.float32)
    np.clip(img, 0.0, 255.0, out=img)
    return np.rint(img, out=img).astype(np.uint8)


def _hand_records(
    hand: HandModel, pose: Pose, mask1: np.ndarray, mask2: np.ndarray | None
) -> list[dict[str, Any]]:
    """The ``hands`` entries of the truth: the primary with its landmarks, then the other."""
    keypoints = pose(hand.keypoints)
    hands: list[dict[str, Any]] = [
        {
            "bbox": box_of(mask1),
            "primary": True,
            "keypoints": [[round(float(x), 3), round(float(y), 3)] for x, y in keypoints],
        }
    ]
    if mask2 is not None:
        hands.append({"bbox": box_of(mask2), "primary": False, "keypoints": []})
    return hands


def render_phantom(
    cfg: PhantomConfig, rng: np.random.Generator, appearance_age: float, male: bool
) -> PhantomSample:
    """Render one phantom radiograph of a child of ``appearance_age`` months and sex ``male``.

    The label is drawn here too (``appearance_age + N(0, label_noise_months)``, clipped).
    Returns a :class:`PhantomSample`; all randomness comes from ``rng``.
    """
    long_side = int(cfg.image_long_side)
    shape = _image_shape(cfg, rng)
    boneage = draw_label(cfg, rng, appearance_age)
    mat = maturity_months(appearance_age, male, cfg.female_maturity_factor)
    # chosen before the hand is drawn, so distractors on or off leave child, hand and pose alone
    wanted = choose_distractors(cfg, rng)
    drawn, mask1, mask2 = _pose_hands(cfg, rng, mat, shape, wanted["second_hand"])
    hand, pose = drawn[0]
    mm_px = pose.scale
    mask = mask1 if mask2 is None else np.maximum(mask1, mask2)
    recorded = [] if mask2 is None else ["second_hand"]

    bg = _background(rng, shape)
    overlay = np.zeros(shape, np.float32)
    if wanted["border"]:
        ext = pose(hand.extent)
        draw_border(rng, bg, overlay, np.stack([ext.min(axis=0), ext.max(axis=0)]), long_side)
        recorded.append("border")
    img = bg + _soft_tissue(rng, mask, mm_px)
    img += _bones(rng, drawn, shape, mm_px)
    recorded += add_markers(rng, wanted, overlay, mask, long_side)
    image = _expose(rng, cfg, img, overlay, mask, wanted)
    recorded += [k for k in ("exposure", "noise") if wanted[k]]

    hands = _hand_records(hand, pose, mask1, mask2)
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
    """The image's own generator: depends on ``(seed, image_id)`` only, not on the order."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(image_id)]))


def sample_phantom(cfg: PhantomConfig, seed: int, image_id: int) -> PhantomSample:
    """Draw sex and appearance age for ``image_id`` and render it (deterministic in seed, id)."""
    rng = _image_rng(seed, image_id)
    male, age = draw_subject(cfg, rng)
    return render_phantom(cfg, rng, age, male)
