"""The converted dataset's schema, shared by the converter, the phantom and the catalog.

Torch-free on purpose: the offline tools (converter, phantom generator) import it without
Detectron2. ``docs/data.md`` describes the json these constants define.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BLANK_IMAGE_FLAG",
    "BORDER_CUT_FLAG",
    "CANONICAL_17",
    "FLAG_REASONS",
    "HAND_CATEGORY",
    "HAND_CATEGORY_ID",
    "INPUT_PROBLEM_FLAGS",
    "INVERTED_FLAG",
    "MULTIPLE_HANDS_FLAG",
    "NO_HAND_FLAG",
    "NOT_HAND_FLAG",
    "ROI_CATEGORY",
    "ROI_CATEGORY_ID",
    "ROI_REFERENCE_LONG_SIDE",
    "ROI_SIZE_PX",
    "ROTATION_FLAG",
    "SDS_FLAG",
    "SPLITS",
    "SMALL_IMAGE_FLAG",
    "UNREADABLE_FLAG",
    "WHOLEBODY_HAND_21",
    "coco_categories",
    "default_landmark_names",
    "roi_boxes_xyxy",
    "roi_side_px",
]

# --- categories -----------------------------------------------------------------------------------
# The hand is its own category (masks, boxes, keypoints); every anatomical ROI box shares one
# class-agnostic category and keeps its landmark index as the annotation's ``landmark``.
HAND_CATEGORY_ID = 1
ROI_CATEGORY_ID = 2
HAND_CATEGORY = "hand"
ROI_CATEGORY = "anatomical_roi"

SPLITS = ("train", "val", "test")

# --- prediction flags -----------------------------------------------------------------------------
# Named flags on a prediction (``flags`` in the predictor's output, CSV and JSON): a reason not to
# trust the number, never a silent one.
NO_HAND_FLAG = "no_hand_found"  # no detection / ROI evidence of a hand; the whole image was read
UNREADABLE_FLAG = "unreadable"  # the file could not be read (its error is reported beside it)
BLANK_IMAGE_FLAG = "blank_image"  # (almost) one grey level: nothing to read
SMALL_IMAGE_FLAG = "image_too_small"  # shorter side below the smallest radiograph we accept
INVERTED_FLAG = "inverted_polarity"  # bright background, dark bones (MONOCHROME1 read wrong?)
NOT_HAND_FLAG = "not_hand_radiograph"  # no hand-like tissue in the image
MULTIPLE_HANDS_FLAG = "multiple_hands"  # more than one hand of similar size
BORDER_CUT_FLAG = "hand_cut_by_border"  # the hand runs out of the image on two or more sides
ROTATION_FLAG = "extreme_rotation"  # the hand's long axis far from the vertical
SDS_FLAG = "sds_beyond_2"  # |bone-age SDS| > 2 for the given chronological age (informational)

# One short reason per flag: the ``flag_reasons`` column of the CSV / JSON.
FLAG_REASONS = {
    NO_HAND_FLAG: "the model found no hand, so it read the whole image",
    UNREADABLE_FLAG: "the file could not be read (see the error column)",
    BLANK_IMAGE_FLAG: "almost one grey level (p1-p99 range below BONEAGE.CHECKS.MIN_RANGE)",
    SMALL_IMAGE_FLAG: "shorter side below BONEAGE.CHECKS.MIN_SIDE_PX",
    INVERTED_FLAG: "bright background, dark bones: polarity inverted (MONOCHROME1?)",
    NOT_HAND_FLAG: "no hand-like tissue (none found, too little, or a convex blob)",
    MULTIPLE_HANDS_FLAG: "two or more hands of similar size",
    BORDER_CUT_FLAG: "the hand touches two or more image sides (cut by the border)",
    ROTATION_FLAG: "the hand's long axis is far from the vertical (film turned?)",
    SDS_FLAG: "bone age more than 2 SD from the chronological age's reference",
}

# Flags that say the input itself is not a readable hand radiograph: ``--reject-flagged`` leaves
# the age of an image with any of them empty. Informational flags (the SDS one) are not here.
INPUT_PROBLEM_FLAGS = (
    UNREADABLE_FLAG,
    BLANK_IMAGE_FLAG,
    SMALL_IMAGE_FLAG,
    NO_HAND_FLAG,
    INVERTED_FLAG,
    NOT_HAND_FLAG,
    MULTIPLE_HANDS_FLAG,
    BORDER_CUT_FLAG,
    ROTATION_FLAG,
)

# --- ROI boxes ------------------------------------------------------------------------------------
# ALA-Net's ROI boxes: 64 x 64 px squares at a 512-px long side, scaled with the image.
ROI_SIZE_PX = 64.0
ROI_REFERENCE_LONG_SIDE = 512


def roi_side_px(
    height: float,
    width: float,
    roi_size_px: float = ROI_SIZE_PX,
    roi_reference_long_side: float = ROI_REFERENCE_LONG_SIDE,
) -> float:
    """Side (pixels) of an ROI box in an image of ``height`` x ``width``: ``roi_size_px`` at a
    long side of ``roi_reference_long_side``, proportionally elsewhere."""
    return roi_size_px * max(height, width) / roi_reference_long_side


def roi_boxes_xyxy(
    centres: np.ndarray, side: float, width: float, height: float
) -> tuple[np.ndarray, np.ndarray]:
    """Square ROI boxes of ``side`` around ``centres`` [N, 2] (continuous x, y), clipped to the
    image: ([N, 4] XYXY boxes, [N] bool: the box keeps a non-empty part of the image)."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    lo = np.maximum(centres - side / 2.0, 0.0)
    hi = np.minimum(centres + side / 2.0, np.array([float(width), float(height)]))
    return np.concatenate([lo, hi], axis=1), (hi > lo).all(axis=1)


# --- landmarks ------------------------------------------------------------------------------------
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


def coco_categories(landmark_names: tuple[str, ...] | list[str], with_roi: bool = True) -> list:
    """The json's ``categories``: the hand (with its keypoint names) and, optionally, the ROI."""
    cats = [
        {
            "id": HAND_CATEGORY_ID,
            "name": HAND_CATEGORY,
            "supercategory": HAND_CATEGORY,
            "keypoints": list(landmark_names),
            "skeleton": [],
        }
    ]
    if with_roi:
        cats.append({"id": ROI_CATEGORY_ID, "name": ROI_CATEGORY, "supercategory": HAND_CATEGORY})
    return cats
