"""Per-image conversion: one label row's PNG, mask and keypoints -> hand and ROI annotations.

:func:`convert_image` is the unit of work of :func:`~boneage_d2.convert.converter.convert_split`
and runs in worker processes, so its input (:class:`ImageJob`) and output (:class:`ImageResult`)
are plain picklable records. Problems are returned as :class:`BadRow` items, never raised; the
caller decides (strict mode) whether they stop the conversion.

Image checks: existence, a readable header (for the size) and the PNG/JPEG trailer (a truncated
file lacks it) are checked for every image without decoding pixels. Corruption inside the
compressed data is only found where pixels are decoded anyway, i.e. when masks are derived.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..io.image_header import DEFAULT_MAX_PIXELS, ImageSize
from ..io.radiograph import (
    ImageReadError,
    check_image_complete,
    check_pixel_budget,
    read_image_size,
    read_radiograph,
)
from ..schema import HAND_CATEGORY_ID, ROI_CATEGORY_ID
from . import hand_masks
from .geometry import clip_box, coco_keypoints, encode_rle, keypoint_extent, roi_boxes, rounded
from .input_problems import (
    ACTION_IMAGE_SKIPPED,
    ACTION_KEYPOINTS_IGNORED,
    ACTION_MASK_IGNORED,
    ACTION_NOTE,
    BadRow,
)
from .keypoint_files import HandKeypoints, first_keypoint_outside
from .roi_files import DrawnROIs, drawn_roi_annotations

__all__ = ["MIN_HAND_AREA_FRACTION", "ImageJob", "ImageResult", "convert_image"]

MIN_HAND_AREA_FRACTION = 0.01  # mask components smaller than this share of the image are dropped


@dataclass
class ImageJob:
    """Everything :func:`convert_image` needs for one label row (paths, the file names and
    fields that its problems cite, and the conversion settings)."""

    rsna_id: str
    label_row: int
    image_path: str
    image_ref: str  # "<image folder name>/<id>.png", for messages
    mask_path: str | None
    mask_ref: str | None
    derive_mask: bool
    hand: HandKeypoints | None
    num_keypoints: int
    roi_size_px: float
    roi_reference_long_side: float
    labels_name: str
    id_field: str
    keypoints_name: str | None
    drawn_rois: DrawnROIs | None = None  # hand-drawn ROI boxes: they replace keypoint-derived ones
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images (header size) are skipped

    def label_problem(
        self, reason: str, action: str = ACTION_IMAGE_SKIPPED, fieldname: str = ""
    ) -> BadRow:
        """A problem reported on this image's label row (by default on its id field)."""
        return BadRow(self.labels_name, self.label_row, fieldname or self.id_field, reason, action)


@dataclass
class ImageResult:
    """The outcome for one image: ``ok`` False when it is skipped; its size, whether its
    keypoints were kept, its hand and ROI annotations (without ids), its problems and how many
    keypoints lie off its hand mask."""

    rsna_id: str
    ok: bool
    width: int = 0
    height: int = 0
    has_keypoints: bool = False
    hands: list[dict[str, Any]] = field(default_factory=list)
    rois: list[dict[str, Any]] = field(default_factory=list)
    issues: list[BadRow] = field(default_factory=list)
    keypoints_off_mask: int = 0  # visible keypoints outside the annotated hand's mask


def _reason(err: Exception, path: str) -> str:
    """An ImageReadError message without the (possibly absolute) path prefix."""
    text = str(err)
    return text[len(path) + 2 :] if text.startswith(path + ": ") else text


def convert_image(job: ImageJob) -> ImageResult:
    """Check one image and build its annotations: hands from the mask's components (else one
    from the keypoint file's box or the keypoints' extent), and the film's drawn ROI boxes
    scaled to the image, else one ROI box per visible keypoint. Keypoints that do not fit the
    real image size are dropped with a problem."""
    res = ImageResult(job.rsna_id, ok=False)
    image = _read_image(job, res.issues)
    if image is None:
        return res
    width, height, mask = image
    res.ok, res.width, res.height = True, width, height
    if job.mask_path is not None:
        stored = _read_stored_mask(job, width, height, res.issues)
        if stored is not None:
            mask = stored
    hand = _checked_keypoints(job, width, height, res.issues)
    res.has_keypoints = hand is not None

    def note(reason: str) -> None:
        res.issues.append(job.label_problem(reason, ACTION_NOTE, "mask"))

    if mask is not None:
        res.hands, outside = hands_from_mask(mask, hand, job.num_keypoints, note, job.derive_mask)
        if outside and hand is not None:
            res.issues.append(_mask_miss(job, hand, outside, job.derive_mask))
            res.keypoints_off_mask = outside
    if not res.hands and hand is not None:
        res.hands = _hand_from_keypoint_file(hand, job.num_keypoints, width, height)
    if job.drawn_rois is not None:
        res.rois, problem = drawn_roi_annotations(job.drawn_rois, width, height, job.image_ref)
        res.issues += [problem] if problem else []
    if not res.rois and hand is not None:
        res.rois = _roi_annotations(hand, job, width, height)
    return res


def _mask_miss(job: ImageJob, hand: HandKeypoints, outside: int, derived: bool) -> BadRow:
    """The note (on the keypoint file's row) that ``outside`` keypoints lie off the hand mask."""
    assert job.keypoints_name is not None
    source = "derived hand mask" if derived else f"hand mask '{job.mask_ref}'"
    reason = (
        f"{outside} of {hand.num_visible} visible keypoints lie outside the {source} of "
        f"'{job.image_ref}'"
    )
    if derived:
        reason += "; the hand box is widened to hold them"
    kp_field = f"{hand.hand}hand_kpts" if hand.hand else "keypoints"
    return BadRow(job.keypoints_name, hand.row, kp_field, reason, ACTION_NOTE)


def _read_image(job: ImageJob, issues: list[BadRow]) -> tuple[int, int, np.ndarray | None] | None:
    """``(width, height, derived mask or None)``, or None (a problem added) when the image is
    missing, unreadable, truncated or over the pixel budget. Pixels are decoded only to derive a
    mask."""
    if not os.path.isfile(job.image_path):
        issues.append(job.label_problem(f"image file '{job.image_ref}' not found"))
        return None
    try:
        width, height = read_image_size(job.image_path)
        check_pixel_budget(ImageSize(width, height), job.max_pixels, job.image_path)
        check_image_complete(job.image_path)
        mask = None
        if job.derive_mask:
            gray = read_radiograph(job.image_path, max_pixels=job.max_pixels)
            mask = hand_masks.derive_hand_mask(gray)
    except ImageReadError as e:
        issues.append(job.label_problem(f"image '{job.image_ref}': {_reason(e, job.image_path)}"))
        return None
    return int(width), int(height), mask


def _read_stored_mask(
    job: ImageJob, width: int, height: int, issues: list[BadRow]
) -> np.ndarray | None:
    """The stored mask of this image, or None (a problem added) when it cannot be read or its
    size differs from the image's."""
    assert job.mask_path is not None
    try:
        stored = hand_masks.read_mask(job.mask_path)
    except ImageReadError as e:
        reason = f"mask '{job.mask_ref}': {_reason(e, job.mask_path)}"
        issues.append(job.label_problem(reason, ACTION_MASK_IGNORED))
        return None
    if stored.shape != (height, width):
        reason = (
            f"mask '{job.mask_ref}' is {stored.shape[1]}x{stored.shape[0]}, "
            f"the image is {width}x{height}"
        )
        issues.append(job.label_problem(reason, ACTION_MASK_IGNORED))
        return None
    return stored


def _checked_keypoints(
    job: ImageJob, width: int, height: int, issues: list[BadRow]
) -> HandKeypoints | None:
    """The job's keypoints if they fit the real image: None (a problem added) when the keypoint
    json states another image size or a visible point lies outside the image."""
    hand = job.hand
    if hand is None:
        return None
    assert job.keypoints_name is not None
    if hand.image_size is not None and hand.image_size != (width, height):
        reason = (
            f"the keypoint json gives {hand.image_size[0]}x{hand.image_size[1]} for "
            f"'{job.image_ref}', the PNG is {width}x{height}"
        )
        issues.append(
            BadRow(job.keypoints_name, hand.row, "width/height", reason, ACTION_KEYPOINTS_IGNORED)
        )
        return None
    hit = first_keypoint_outside(hand.keypoints, width, height)
    if hit is not None:
        j, x, y = hit
        kp_field = f"{hand.hand}hand_kpts" if hand.hand else "keypoints"
        reason = (
            f"keypoint {j} (x={x:g}, y={y:g}) is outside the {width}x{height} image "
            f"'{job.image_ref}'"
        )
        issues.append(
            BadRow(job.keypoints_name, hand.row, kp_field, reason, ACTION_KEYPOINTS_IGNORED)
        )
        return None
    return hand


def _hand_annotation(
    bbox: list[float],
    area: float,
    kps: np.ndarray | None,
    k: int,
    segmentation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A hand annotation (without ids); ``kps`` None gives K invisible keypoints."""
    flat, num = coco_keypoints(kps, k)
    ann: dict[str, Any] = {
        "category_id": HAND_CATEGORY_ID,
        "bbox": bbox,
        "area": area,
        "iscrowd": 0,
    }
    if segmentation is not None:
        ann["segmentation"] = segmentation
    ann["keypoints"] = flat
    ann["num_keypoints"] = num
    return ann


def _hand_from_keypoint_file(
    hand: HandKeypoints, k: int, width: int, height: int
) -> list[dict[str, Any]]:
    """One hand from the keypoint json's box (clipped), else from the keypoints' extent; none
    when neither box lies inside the image."""
    box = clip_box(hand.bbox, width, height) if hand.bbox is not None else None
    if box is None:
        box = keypoint_extent(hand.keypoints, width, height)
    if box is None:
        return []
    return [_hand_annotation(box, rounded(box[2] * box[3]), hand.keypoints, k)]


def _keypoint_pixels(hand: HandKeypoints, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Pixel (row, column) of each visible keypoint, clipped to the image."""
    vis = hand.keypoints[hand.keypoints[:, 2] > 0]
    xi = np.clip(np.floor(vis[:, 0] + 0.5).astype(np.int64), 0, width - 1)
    yi = np.clip(np.floor(vis[:, 1] + 0.5).astype(np.int64), 0, height - 1)
    return yi, xi


def _union_box(boxes: list[list[float]]) -> list[float]:
    """The smallest ``[x, y, w, h]`` holding every box."""
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return [rounded(x0), rounded(y0), rounded(x1 - x0), rounded(y1 - y0)]


def hands_from_mask(
    mask: np.ndarray,
    hand: HandKeypoints | None,
    k: int,
    note: Callable[[str], None],
    derived: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Hand annotations from the large connected components of ``mask``, and how many visible
    keypoints lie off the annotated hand's mask.

    The keypoints go to the component holding most of them, which comes first; with a
    ``derived`` mask, every component holding one of them is a fragment of that hand: they
    make one instance, whose box also holds the keypoints. Other components are hands without
    keypoints. ``note`` receives the informational messages."""
    height, width = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    min_area = MIN_HAND_AREA_FRACTION * height * width
    comps = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    if not comps:
        note(
            "the hand mask has no component of at least "
            f"{MIN_HAND_AREA_FRACTION:.0%} of the image; no hand instance from the mask"
        )
        return [], 0
    area = {i: int(stats[i, cv2.CC_STAT_AREA]) for i in comps}
    groups = [[i] for i in sorted(comps, key=lambda i: (-area[i], i))]
    outside = 0
    if hand is not None:
        yx = _keypoint_pixels(hand, width, height)
        counts = np.bincount(labels[yx], minlength=n)
        primary = max(comps, key=lambda i: (int(counts[i]), area[i], -i))
        if counts[primary] == 0:
            note("no keypoint lies on the hand mask; keypoints attached to the largest component")
        members = [i for i in comps if counts[i] > 0 and derived] or [primary]
        groups = [members] + [g for g in groups if g[0] not in members]
        outside = len(yx[0]) - int(counts[members].sum())
    hands = []
    for n_group, group in enumerate(groups):
        kps = hand.keypoints if n_group == 0 and hand is not None else None
        boxes = [[float(int(v)) for v in stats[i, :4]] for i in group]
        if kps is not None and derived:
            boxes += [b for b in [keypoint_extent(kps, width, height)] if b is not None]
        box = boxes[0] if len(boxes) == 1 else _union_box(boxes)
        seg = encode_rle(np.isin(labels, group))
        hands.append(_hand_annotation(box, float(sum(area[i] for i in group)), kps, k, seg))
    return hands, outside


def _roi_annotations(
    hand: HandKeypoints, job: ImageJob, width: int, height: int
) -> list[dict[str, Any]]:
    """One anatomical ROI box annotation (without ids) per visible keypoint."""
    boxes = roi_boxes(hand.keypoints, width, height, job.roi_size_px, job.roi_reference_long_side)
    return [
        {
            "category_id": ROI_CATEGORY_ID,
            "bbox": box,
            "area": rounded(box[2] * box[3]),
            "iscrowd": 0,
            "landmark": j,
        }
        for j, box in boxes
    ]
