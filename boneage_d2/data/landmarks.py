"""Landmark (keypoint) name sets: our canonical 17 and COCO-WholeBody's 21 hand points."""

from __future__ import annotations

__all__ = ["CANONICAL_17", "WHOLEBODY_HAND_21", "default_landmark_names"]

# Joint centres where growth plates are read, grouped by ray (thumb = digit 1); see docs/data.md.
CANONICAL_17: tuple[str, ...] = (
    "radius",
    "ulna",
    "carpal",
    "thumb_mcp",
    "thumb_ip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "little_mcp",
    "little_pip",
    "little_dip",
)

# COCO-WholeBody hand order: wrist, then 4 per digit from thumb to little finger, base to tip.
WHOLEBODY_HAND_21: tuple[str, ...] = ("wrist",) + tuple(
    f"{digit}_{joint}"
    for digit in ("thumb", "index", "middle", "ring", "little")
    for joint in ("1", "2", "3", "4")
)


def default_landmark_names(num_keypoints: int) -> tuple[str, ...]:
    """Names for ``num_keypoints`` landmarks: canonical 17, WholeBody 21, else ``kp_<i>``."""
    if num_keypoints == len(CANONICAL_17):
        return CANONICAL_17
    if num_keypoints == len(WHOLEBODY_HAND_21):
        return WHOLEBODY_HAND_21
    return tuple(f"kp_{i}" for i in range(num_keypoints))
