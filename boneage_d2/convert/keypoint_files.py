"""Hand-keypoint json files: BoNet-style COCO keypoints (17 points, or any K) and
COCO-WholeBody hand annotations (21 points), the format detected from the data."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..schema import default_landmark_names
from .input_problems import (
    ACTION_KEYPOINTS_IGNORED,
    ACTION_NOTE,
    BadRow,
    ProblemLog,
    RSNAFormatError,
)
from .label_files import parse_id

__all__ = [
    "DEFAULT_NUM_KEYPOINTS",
    "FORMAT_BONET17",
    "FORMAT_WHOLEBODY21",
    "HandKeypoints",
    "KeypointFile",
    "first_keypoint_outside",
    "read_keypoints",
]

DEFAULT_NUM_KEYPOINTS = 17  # when a keypoint file says nothing about K
FORMAT_BONET17 = "bonet17"
FORMAT_WHOLEBODY21 = "wholebody21"


@dataclass
class HandKeypoints:
    """One annotated hand from a keypoint file (COCO convention: pixel-index x, y).

    ``keypoints``: (K, 3) float array of x, y, v; ``bbox``: the file's hand box ``[x, y, w, h]``
    or None; ``image_size``: (W, H) stated by the json (None when absent); ``row``: 1-based
    index in the json's ``annotations``; ``hand``: ``"left"``/``"right"`` for WholeBody files.
    """

    rsna_id: str
    row: int
    keypoints: np.ndarray
    bbox: list[float] | None = None
    image_size: tuple[int, int] | None = None
    hand: str | None = None

    @property
    def num_visible(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())


@dataclass
class KeypointFile:
    """A parsed keypoint json: ``format`` (``bonet17``, ``wholebody21`` or ``coco<K>``),
    ``num_keypoints`` K, ``keypoint_names`` (our default names for K), ``hands`` by RSNA id
    (images with usable keypoints), ``no_keypoints`` (RSNA id -> row of annotations that mark
    "no keypoints": all-zero points or a zero-width box) and ``issues`` (bad rows and notes)."""

    path: str
    name: str
    format: str
    num_keypoints: int
    keypoint_names: tuple[str, ...]
    hands: dict[str, HandKeypoints] = field(default_factory=dict)
    no_keypoints: dict[str, int] = field(default_factory=dict)
    issues: list[BadRow] = field(default_factory=list)


def _as_float_list(values: Any) -> list[float] | None:
    """A json list of numbers as floats; None for anything else (strings, booleans, nulls)."""
    if not isinstance(values, (list, tuple)):
        return None
    if not values:
        return []
    arr = np.asarray(values) if all(type(v) in (int, float) for v in values) else None
    if arr is None or arr.dtype.kind not in "iuf" or arr.ndim != 1:
        return None
    return arr.astype(np.float64).tolist()


def first_keypoint_outside(
    kps: np.ndarray, width: int, height: int
) -> tuple[int, float, float] | None:
    """First visible keypoint outside the image (pixel-index range [-0.5, W-0.5]), if any."""
    for j, (x, y, v) in enumerate(kps.tolist()):
        if v > 0 and not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
            return j, x, y
    return None


def _detect_num_keypoints(data: dict, annotations: list, wholebody: bool) -> int:
    if wholebody:
        lengths = [
            len(a[k])
            for a in annotations
            if isinstance(a, dict)
            for k in ("lefthand_kpts", "righthand_kpts")
            if isinstance(a.get(k), list) and a.get(k)
        ]
    else:
        categories = data.get("categories")
        for cat in categories if isinstance(categories, list) else []:
            if isinstance(cat, dict) and isinstance(cat.get("keypoints"), list):
                if cat["keypoints"]:
                    return len(cat["keypoints"])
        lengths = [
            len(a["keypoints"])
            for a in annotations
            if isinstance(a, dict) and isinstance(a.get("keypoints"), list) and a["keypoints"]
        ]
    lengths = [n for n in lengths if n % 3 == 0]
    if not lengths:
        return 21 if wholebody else DEFAULT_NUM_KEYPOINTS
    counts = Counter(lengths)
    best = max(counts.values())
    return min(n for n, c in counts.items() if c == best) // 3


def _load_json(path: Path) -> dict[str, Any]:
    """The json of a keypoint file with ``annotations`` and ``images`` lists; raises
    FileNotFoundError / RSNAFormatError when the file as a whole is unusable."""
    name = path.name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: keypoint file not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        # ValueError: JSONDecodeError, or an integer beyond Python's digit limit;
        # RecursionError: nesting deeper than the json module follows.
        raise RSNAFormatError(BadRow(name, 0, "-", f"not valid json ({e})")) from e
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise RSNAFormatError(BadRow(name, 0, "annotations", "no 'annotations' list"))
    if not isinstance(data.get("images"), list):
        raise RSNAFormatError(BadRow(name, 0, "images", "no 'images' list"))
    return data


def _format_name(wholebody: bool, k: int) -> str:
    if wholebody:
        return FORMAT_WHOLEBODY21 if k == 21 else f"wholebody{k}"
    return FORMAT_BONET17 if k == 17 else f"coco{k}"


# report(row, field, reason, action=ACTION_KEYPOINTS_IGNORED): records one problem of the file.
_Report = Callable[..., None]


@dataclass
class _RawHand:
    """The still unchecked keypoints and box of one annotation's hand, with their json keys."""

    side: str | None  # "left" / "right" in WholeBody files
    kp_field: str
    box_field: str
    values: list[float] | None
    box: list[float] | None
    box_given: bool  # the annotation has a (non-null) box key


def _annotation_image(
    ann: Any, row: int, images: dict[str, Any], report: _Report
) -> tuple[str, tuple[int, int] | None] | None:
    """``(RSNA id, image size stated by the json or None)`` of an annotation, from its image's
    ``file_name``; None (reported) when the annotation or its image is unusable."""
    if not isinstance(ann, dict):
        report(row, "-", "annotation is not an object")
        return None
    image = images.get(str(ann.get("image_id")))
    if image is None:
        report(row, "image_id", f"image_id {ann.get('image_id')!r} is not in the json's images")
        return None
    file_name = image.get("file_name")
    stem = Path(str(file_name)).stem if file_name else ""
    rsna_id, why = parse_id(stem)
    if why or rsna_id is None:
        report(row, "file_name", f"file_name {file_name!r} is not '<RSNA id>.png'")
        return None
    w, h = image.get("width"), image.get("height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return rsna_id, (w, h)
    return rsna_id, None


def _wholebody_hand(ann: dict, row: int, report: _Report) -> _RawHand | None:
    """The valid hand of a WholeBody annotation (the left one when both are, with a note);
    None when no hand is valid, has a non-zero keypoint and a box of positive size."""
    chosen = []
    for side in ("left", "right"):
        values = ann.get(f"{side}hand_kpts")
        box = _as_float_list(ann.get(f"{side}hand_box"))
        usable = (
            bool(ann.get(f"{side}hand_valid"))
            and isinstance(values, list)
            and any(v != 0 for v in values if isinstance(v, (int, float)))
            and not (box is not None and len(box) == 4 and (box[2] <= 0 or box[3] <= 0))
        )
        if usable:
            chosen.append(side)
    if not chosen:
        return None
    side = chosen[0]
    if len(chosen) == 2:
        report(row, "lefthand_valid", "both hands are valid; the left hand is used", ACTION_NOTE)
    kp_field, box_field = f"{side}hand_kpts", f"{side}hand_box"
    return _RawHand(
        side,
        kp_field,
        box_field,
        _as_float_list(ann.get(kp_field)),
        _as_float_list(ann.get(box_field)),
        ann.get(box_field) is not None,
    )


def _bonet_hand(ann: dict) -> _RawHand | None:
    """The ``keypoints`` and ``bbox`` of a BoNet-style annotation; None without keypoints."""
    raw = ann.get("keypoints")
    if raw is None or raw == []:
        return None
    box = ann.get("bbox")
    return _RawHand(
        None, "keypoints", "bbox", _as_float_list(raw), _as_float_list(box), box is not None
    )


def _checked_values(raw: _RawHand, k: int, row: int, report: _Report) -> np.ndarray | None:
    """The (K, 3) keypoint array, or None (reported) for non-numeric values, a wrong count,
    visibility flags other than 0/1/2, or a box that is not ``[x, y, w, h]``."""
    values, box = raw.values, raw.box
    if values is None or not all(math.isfinite(v) for v in values):
        report(row, raw.kp_field, "keypoints are not a list of finite numbers")
        return None
    if len(values) != 3 * k:
        report(
            row,
            raw.kp_field,
            f"wrong keypoint count: {len(values)} numbers ({len(values) / 3:g} points), "
            f"expected {3 * k} ({k} points)",
        )
        return None
    kps = np.asarray(values, dtype=np.float64).reshape(k, 3)
    if not np.isin(kps[:, 2], (0.0, 1.0, 2.0)).all():
        report(row, raw.kp_field, "visibility flags must be 0, 1 or 2")
        return None
    if raw.box_given and (box is None or len(box) != 4 or not all(math.isfinite(v) for v in box)):
        report(row, raw.box_field, "box is not [x, y, w, h]")
        return None
    return kps


def _marks_no_keypoints(kps: np.ndarray, box: list[float] | None) -> bool:
    """All-zero keypoints, no visible point or a zero-width box mean "no keypoints"."""
    if not kps.any() or not (kps[:, 2] > 0).any():
        return True
    return box is not None and (box[2] <= 0 or box[3] <= 0)


def read_keypoints(
    path: str | os.PathLike, *, strict: bool = False, bad_rows: list[BadRow] | None = None
) -> KeypointFile:
    """Read a hand-keypoint json, detecting its format.

    (a) BoNet-style COCO keypoints: ``annotations[i].keypoints`` with K points (K from the
    categories' ``keypoints`` names, else the most common length in the data), ``bbox`` the hand
    box; (b) COCO-WholeBody hands: ``lefthand_kpts``/``righthand_kpts`` (21 x 3 numbers),
    ``*_valid``, ``*_box``; the valid hand is used, the left one when both are valid (reported as
    a note). Annotations join images through ``images[].file_name`` (its stem is the RSNA id),
    never through the json's own ids. All-zero keypoints, no visible point or a zero-width box
    mean "no keypoints" for that image.

    Bad rows (wrong number of values, non-numeric values, visibility not 0/1/2, visible points
    outside the image size the json states, unknown image, a second hand for one image) are
    left out and reported (``issues``, ``bad_rows``), or raise ``RSNAFormatError`` with
    ``strict=True``. A missing file or invalid json raises in both modes.
    """
    path = Path(path)
    name = path.name
    data = _load_json(path)
    annotations: list = data["annotations"]
    images = {str(im.get("id")): im for im in data["images"] if isinstance(im, dict)}
    wholebody = any(
        isinstance(a, dict) and ("lefthand_kpts" in a or "righthand_kpts" in a) for a in annotations
    )
    k = _detect_num_keypoints(data, annotations, wholebody)
    out = KeypointFile(
        os.fspath(path), name, _format_name(wholebody, k), k, default_landmark_names(k)
    )
    issues = ProblemLog(strict, out.issues)

    def report(
        row: int, fieldname: str, reason: str, action: str = ACTION_KEYPOINTS_IGNORED
    ) -> None:
        issues.add(BadRow(name, row, fieldname, reason, action))

    for row, ann in enumerate(annotations, start=1):
        target = _annotation_image(ann, row, images, report)
        if target is None:
            continue
        rsna_id, size = target
        raw = _wholebody_hand(ann, row, report) if wholebody else _bonet_hand(ann)
        if raw is None:
            out.no_keypoints.setdefault(rsna_id, row)
            continue
        kps = _checked_values(raw, k, row, report)
        if kps is None:
            continue
        if _marks_no_keypoints(kps, raw.box):
            out.no_keypoints.setdefault(rsna_id, row)
            continue
        hit = first_keypoint_outside(kps, *size) if size is not None else None
        if hit is not None:
            j, x, y = hit
            report(
                row,
                raw.kp_field,
                f"keypoint {j} (x={x:g}, y={y:g}) is outside the {size[0]}x{size[1]} image",
            )
            continue
        if rsna_id in out.hands:
            first = out.hands[rsna_id].row
            report(
                row,
                raw.kp_field,
                f"second hand with keypoints for image {rsna_id} (first: row {first})",
            )
            continue
        out.hands[rsna_id] = HandKeypoints(rsna_id, row, kps, raw.box, size, raw.side)
    for rsna_id in out.hands:
        out.no_keypoints.pop(rsna_id, None)
    if bad_rows is not None:
        bad_rows.extend(out.issues)
    return out
