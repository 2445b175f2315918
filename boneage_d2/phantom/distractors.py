"""Distractors that a bone-age model must learn to ignore.

Which ones an image gets (:func:`choose_distractors`), the collimation border, the unlabelled
markers (ruler, L/R tag, free letters) pasted where there is no hand, and the strong exposure and
noise settings of the film. The second partial hand is placed by
:func:`boneage_d2.phantom.placement.place_second_hand`.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import cv2
import numpy as np

from .config import DISTRACTOR_KINDS, REFERENCE_LONG_SIDE, PhantomConfig
from .raster import SHIFT, rotation, to_cv

__all__ = ["add_markers", "choose_distractors", "draw_border", "exposure_window", "noise_sigma"]


def choose_distractors(cfg: PhantomConfig, rng: np.random.Generator) -> dict[str, bool]:
    """Which distractor kinds this image gets: one uniform draw per kind, always.

    Drawing even for kinds that are off keeps the random stream the same, so one seed gives the
    same child, hand and pose with distractors on or off (clean/cluttered pairs).
    """
    draws = rng.random(len(DISTRACTOR_KINDS))
    return {k: bool(u < cfg.distractor_prob(k)) for k, u in zip(DISTRACTOR_KINDS, draws)}


def draw_border(
    rng: np.random.Generator,
    bg: np.ndarray,
    overlay: np.ndarray,
    extent_box: np.ndarray,
    long_side: float,
) -> None:
    """Collimation frame around the hand's extent box: bright lines with a glow, darker outside.

    Darkens ``bg`` outside the frame and adds the lines to ``overlay``, both in place.
    """
    h, w = bg.shape
    lo, hi = extent_box
    pad = rng.uniform(0.02, 0.14, size=4) * long_side
    x0, y0 = lo[0] - pad[0], lo[1] - pad[1]
    x1, y1 = hi[0] + pad[2], hi[1] + pad[3] + rng.uniform(0.0, 0.5) * h
    c = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    rot = rotation(float(rng.uniform(-3.0, 3.0)))
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) - c
    corners = corners @ rot.T + c
    inside = np.zeros((h, w), np.float32)
    cv2.fillPoly(inside, [to_cv(corners)], 1.0, cv2.LINE_AA, SHIFT)
    inside = cv2.GaussianBlur(inside, (0, 0), 0.004 * long_side + 0.5)
    dark = float(rng.uniform(0.25, 0.75))
    bg *= dark + (1.0 - dark) * inside
    bg += float(rng.uniform(2.0, 12.0)) * inside
    lines = np.zeros((h, w), np.float32)
    t = max(1, int(round(float(rng.uniform(0.004, 0.012)) * long_side)))
    cv2.polylines(lines, [to_cv(corners)], True, 1.0, t, cv2.LINE_AA, SHIFT)
    glow = cv2.GaussianBlur(lines, (0, 0), 0.012 * long_side)
    overlay += float(rng.uniform(40.0, 100.0)) * (lines + 0.9 * glow)


# ----------------------------------------------------------------------------------------------
# markers: bright patches pasted where there is no hand


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
    """``patch`` rotated by ``angle_deg`` on a canvas just large enough to hold it."""
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


def _ruler(
    rng: np.random.Generator, shape: tuple[int, int], long_side: int
) -> tuple[np.ndarray, float]:
    """A ruler patch along the height or width (upright or lying), and its brightness."""
    h, w = shape
    length = int(float(rng.uniform(0.3, 0.6)) * (h if rng.random() < 0.6 else w))
    width = max(5, int(float(rng.uniform(0.022, 0.035)) * long_side))
    patch = _ruler_patch(rng, length, width)
    if length > w - 4 or rng.random() < 0.6:
        patch = np.ascontiguousarray(patch.T[:, ::-1] if rng.random() < 0.5 else patch.T)
    return patch, float(rng.uniform(90.0, 160.0))


def _tag(
    rng: np.random.Generator, shape: tuple[int, int], long_side: int
) -> tuple[np.ndarray, float]:
    """An L/R marker plate with initials (mostly L), upright or turned, and its brightness."""
    letter = "L" if rng.random() < 0.75 else "R"
    patch = _text_patch(rng, float(rng.uniform(0.06, 0.1)) * long_side, True, letter)
    patch = _rotate_patch(patch, float(rng.choice([0.0, 0.0, 90.0, -90.0, rng.uniform(-40, 40)])))
    return patch, float(rng.uniform(150.0, 210.0))


def _letters(
    rng: np.random.Generator, shape: tuple[int, int], long_side: int
) -> tuple[np.ndarray, float]:
    """One to three free letters/digits, slightly turned, and their brightness."""
    chars = string.ascii_uppercase + string.digits
    text = "".join(rng.choice(list(chars), size=int(rng.integers(1, 4))))
    patch = _text_patch(rng, float(rng.uniform(0.035, 0.07)) * long_side, False, text)
    patch = _rotate_patch(patch, float(rng.uniform(-30.0, 30.0)))
    return patch, float(rng.uniform(110.0, 200.0))


_MarkerMaker = Callable[[np.random.Generator, tuple[int, int], int], tuple[np.ndarray, float]]
_MARKERS: tuple[tuple[str, _MarkerMaker], ...] = (
    ("ruler", _ruler),
    ("tag", _tag),
    ("letters", _letters),
)


def add_markers(
    rng: np.random.Generator,
    wanted: dict[str, bool],
    overlay: np.ndarray,
    mask: np.ndarray,
    long_side: int,
) -> list[str]:
    """Paste the wanted markers into ``overlay`` away from the hands; return the kinds placed.

    A marker that finds no free place is left out (and not recorded).
    """
    ref = long_side / REFERENCE_LONG_SIDE
    occupied = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=max(2, int(6 * ref)))
    placed = []
    for kind, make in _MARKERS:
        if wanted[kind]:
            patch, gain = make(rng, overlay.shape, long_side)
            if _paste_free(rng, overlay, occupied, patch, gain):
                placed.append(kind)
    return placed


# ----------------------------------------------------------------------------------------------
# film: exposure and detector noise


def exposure_window(rng: np.random.Generator, strong: bool) -> tuple[float, float, float]:
    """``(gamma, black, white)`` of the film: mild variation, or strong as a distractor.

    Strong settings give washed-out grey or dark, low-contrast films; the window still keeps
    >= 90 grey levels for the hand so the bones stay readable.
    """
    if strong:
        gamma = float(np.exp(rng.uniform(-0.45, 0.45)))
        black = float(rng.uniform(0.0, 100.0))
        white = min(255.0, black + float(rng.uniform(90.0, 200.0)))
    else:
        gamma = float(np.exp(rng.uniform(-0.12, 0.12)))
        black = float(rng.uniform(0.0, 6.0))
        white = float(rng.uniform(205.0, 245.0))
    return gamma, black, white


def noise_sigma(rng: np.random.Generator, base_sigma: float, strong: bool) -> float:
    """Detector noise sd (grey levels): ``base_sigma`` +-40%, plus 4-10 when ``strong``."""
    sigma = base_sigma * float(rng.uniform(0.6, 1.4))
    if strong:
        sigma += float(rng.uniform(4.0, 10.0))
    return sigma
