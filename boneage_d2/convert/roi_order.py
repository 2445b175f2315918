"""Which digit a hand-drawn box belongs to: boxes ordered from the thumb to the little finger.

The radius lies on the thumb side of the forearm in every hand, left or right, on a mirrored or
a rotated film. So the order is read from the anatomy, not from the film's left and right: each
finger box (MCP, PIP, DIP) gets its angle around the Wrist box's centre, measured from the
hand's long axis (Wrist centre -> mean centre of the finger boxes), positive toward the Radius
box. Within a class, the boxes sorted by decreasing angle run thumb, index, middle, ring, little
(the thumb has no DIP). Fingers fan out from the wrist and never cross, so the angles keep the
digits apart where a plain left-to-right order would not (a rotated film, a spread thumb).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_RADIUS_ULNA_OFFSET", "HandOrientationError", "thumbward_angles"]

# Radius and Ulna centres must lie at least this far apart across the hand's axis, in units of
# the two boxes' mean size ((w + h) / 2): closer, the thumb side cannot be told.
MIN_RADIUS_ULNA_OFFSET = 0.25


class HandOrientationError(ValueError):
    """The boxes do not say which side of the hand the thumb is on."""


def _centres(xyxy: np.ndarray) -> np.ndarray:
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2.0


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def thumbward_angles(
    finger_boxes: np.ndarray, wrist_box: np.ndarray, radius_box: np.ndarray, ulna_box: np.ndarray
) -> np.ndarray:
    """Angle (radians) of each finger box [N, 4] (XYXY) around the wrist box's centre from the
    hand's long axis, positive toward the thumb (the radius side); sorting by decreasing angle
    orders a class from thumb to little finger. Raises :class:`HandOrientationError` when the
    Radius and Ulna boxes are too close across the hand's axis to tell the thumb side."""
    fingers = _centres(finger_boxes)
    wrist, radius, ulna = (_centres(b)[0] for b in (wrist_box, radius_box, ulna_box))
    axis = fingers.mean(axis=0) - wrist
    if not np.linalg.norm(axis) > 0:
        raise HandOrientationError("the finger boxes are centred on the Wrist box: no hand axis")
    axis /= np.linalg.norm(axis)
    offset = float(_cross(axis, radius - ulna))
    sizes = [
        (b[2] - b[0] + b[3] - b[1]) / 2.0
        for b in np.asarray([radius_box, ulna_box], dtype=np.float64).reshape(2, 4)
    ]
    if abs(offset) < MIN_RADIUS_ULNA_OFFSET * float(np.mean(sizes)):
        raise HandOrientationError(
            f"the Radius and Ulna box centres are {abs(offset):.1f} px apart across the hand's "
            f"axis, under {MIN_RADIUS_ULNA_OFFSET:g} of their mean size {np.mean(sizes):.1f} px: "
            "the thumb side cannot be told"
        )
    rel = fingers - wrist
    return np.sign(offset) * np.arctan2(_cross(axis, rel), rel @ axis)
