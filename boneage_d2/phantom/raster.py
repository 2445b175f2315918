"""Rasterisation: hand-frame millimetres to pixels, polygon fills, bone and mask layers."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .anatomy import HandModel

__all__ = ["SHIFT", "Pose", "box_of", "draw_bones", "fill", "hand_mask", "rotation", "to_cv"]

SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << SHIFT


def rotation(angle_deg: float) -> np.ndarray:
    """2x2 counter-clockwise rotation matrix."""
    a = math.radians(angle_deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


class Pose:
    """Similarity transform hand-frame mm (y up) -> continuous pixel coordinates (y down)."""

    def __init__(
        self, scale: float, angle_deg: float, mirror: bool, tx: float = 0.0, ty: float = 0.0
    ):
        fx = -1.0 if mirror else 1.0
        self.scale = scale
        self.mat = scale * rotation(angle_deg) @ np.array([[fx, 0.0], [0.0, -1.0]])
        self.t = np.array([tx, ty])

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        return pts @ self.mat.T + self.t

    def moved(self, tx: float, ty: float) -> Pose:
        """The same pose translated to ``(tx, ty)``."""
        p = Pose.__new__(Pose)
        p.scale, p.mat, p.t = self.scale, self.mat, np.array([tx, ty])
        return p


def to_cv(pts_px: np.ndarray) -> np.ndarray:
    """Continuous px -> fixed-point pixel-index coordinates for cv2 drawing (centre = +0.5)."""
    return np.round((pts_px - 0.5) * _ONE).astype(np.int32)


def fill(img: np.ndarray, polys: list[np.ndarray], value: float, aa: bool = True) -> None:
    """Fill each polygon (one call each: cv2 fills several polygons with the even-odd rule)."""
    line = cv2.LINE_AA if aa else cv2.LINE_8
    for p in polys:
        cv2.fillPoly(img, [to_cv(p)], float(value), line, SHIFT)


def hand_mask(hand: HandModel, pose: Pose, shape: tuple[int, int]) -> np.ndarray:
    """uint8 mask (255 = soft tissue) of ``hand`` at ``pose``."""
    mask = np.zeros(shape, np.uint8)
    fill(mask, [pose(p) for p in hand.tissue], 255, aa=False)
    return mask


def draw_bones(
    hand: HandModel, pose: Pose, density: np.ndarray, cortex: np.ndarray, mm_px: float
) -> None:
    """Rasterise bones (uint8 density 0-255) and their cortex (uint8 0-255) in place."""
    outline_px = max(1, int(round(0.55 * mm_px)))
    for p0, p1, thick_mm, strength in hand.scars:
        a, b = to_cv(pose(np.stack([p0, p1])))
        t = max(1, int(round(thick_mm * mm_px)))
        cv2.line(cortex, tuple(a), tuple(b), 255.0 * 0.55 * strength, t, cv2.LINE_AA, SHIFT)
    polys_px = []
    for poly, dens in hand.bones:
        pp = pose(poly)
        polys_px.append(pp)
        fill(density, [pp], 255.0 * min(dens, 1.0))
    cv2.polylines(cortex, [to_cv(p) for p in polys_px], True, 255.0, outline_px, cv2.LINE_AA, SHIFT)
    for line, thick_mm in hand.cortex_bands:
        t = max(1, int(round(thick_mm * mm_px)))
        cv2.polylines(cortex, [to_cv(pose(line))], False, 255.0, t, cv2.LINE_AA, SHIFT)


def box_of(mask: np.ndarray) -> list[float] | None:
    """``[x, y, w, h]`` (continuous px) of the nonzero pixels of ``mask``; None if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        return None
    return [float(xs[0]), float(ys[0]), float(xs[-1] + 1 - xs[0]), float(ys[-1] + 1 - ys[0])]
