"""Where the hands go: random zoom, rotation and position of the hand(s) in the image."""

from __future__ import annotations

import cv2
import numpy as np

from .anatomy import HandModel
from .config import PhantomConfig
from .raster import Pose, box_of, hand_mask

__all__ = ["place_hand", "place_second_hand"]


def place_hand(
    rng: np.random.Generator,
    hand: HandModel,
    cfg: PhantomConfig,
    shape: tuple[int, int],
    mirror: bool,
) -> Pose:
    """Random zoom, rotation and position with the hand's nominal extent inside the image."""
    h, w = shape
    margin = 0.02 * max(h, w)
    tries = 50
    for _ in range(tries):
        angle = float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
        zoom = float(rng.uniform(*cfg.hand_extent_range))
        unit = Pose(1.0, angle, mirror)
        ext = unit(hand.extent)
        span = ext.max(axis=0) - ext.min(axis=0)
        scale = zoom * h / span[1]
        # the hand must fit (wide spread hands in narrow images get a smaller zoom)
        scale = min(scale, (w - 2 * margin) / span[0], (h - 2 * margin) / span[1])
        pose = Pose(scale, angle, mirror)
        ext = pose(hand.extent)
        lo, hi = ext.min(axis=0), ext.max(axis=0)
        tx = float(rng.uniform(margin - lo[0], max(margin - lo[0], w - margin - hi[0])))
        ty = float(rng.uniform(margin - lo[1], max(margin - lo[1], h - margin - hi[1])))
        pose = pose.moved(tx, ty)
        kp = pose(hand.keypoints)
        if (kp >= 1.0).all() and (kp[:, 0] <= w - 1.0).all() and (kp[:, 1] <= h - 1.0).all():
            return pose
    raise RuntimeError(f"could not place the hand inside a {w}x{h} image after {tries} tries")


def place_second_hand(
    rng: np.random.Generator,
    hand2: HandModel,
    pose1: Pose,
    primary_mask: np.ndarray,
    mirror: bool,
) -> tuple[Pose, np.ndarray] | None:
    """Put the other hand partly into the image at the freer side edge, not touching the first.

    Returns its pose and mask, or None when there is no room (then no second hand is drawn).
    """
    h, w = primary_mask.shape
    box = box_of(primary_mask)
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
    pose = Pose(pose1.scale * float(rng.uniform(0.9, 1.1)), angle, mirror)
    ext = pose(hand2.extent)
    lo, hi = ext.min(axis=0), ext.max(axis=0)
    ty = float(rng.uniform(0.25 * h, 0.75 * h)) - 0.5 * (lo[1] + hi[1])
    visible = float(rng.uniform(0.35, 0.9)) * (free - gap)
    for _ in range(6):
        tx = w - visible - lo[0] if right else visible - hi[0]
        cand = pose.moved(tx, ty)
        m2 = hand_mask(hand2, cand, (h, w))
        if np.count_nonzero(m2) < 0.01 * h * w:
            return None  # moving further out only makes it smaller
        # one connected piece (separate fingertips would read as several hands) off the first
        if not (m2 & guard).any() and cv2.connectedComponents(m2, connectivity=8)[0] == 2:
            return cand, m2
        visible *= 0.7
    return None
