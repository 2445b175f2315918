"""RSNA Pediatric Bone Age -> COCO json: the split converter and the raw layout.

The contract is ``docs/data.md`` (raw layout, pixel conventions, the converted json); the input
formats are described in ``DATA_FORMATS.md`` of the design notes. The pieces:

- :func:`read_labels` (``label_files``) reads any of the published RSNA label files (.csv or
  .xlsx) by header name, never by position, and validates every row.
- :func:`read_keypoints` (``keypoint_files``) reads BoNet-style COCO keypoint json (17 points,
  or any K) and COCO-WholeBody hand annotations (21 points), detecting the format.
- :func:`convert_split` (here) joins labels, PNG headers, keypoints and optional hand masks into
  one COCO json per split, atomically and deterministically, and reports every skipped row.

Bad input never passes silently. Every problem is a :class:`BadRow` (``input_problems``) naming
the file, the row and the field. By default a bad row is skipped and reported in
``<output stem>.skipped.csv``; ``strict=True`` raises :class:`RSNAFormatError` on the first one.
Problems that make a whole file unusable (missing file, missing column, invalid json) raise in
both modes.

Image checks: existence, a readable header (for the size) and the PNG/JPEG trailer (a truncated
file lacks it) are checked for every image without decoding pixels. Corruption inside the
compressed data is only found where pixels are decoded anyway, i.e. when masks are derived
(``derive_masks=True``).

This module re-exports the readers' public names, so ``boneage_d2.convert.rsna`` stays the one
import for the whole pipeline.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from ..io.atomic import atomic_open, sha1_file
from ..io.radiograph import ImageReadError, check_image_complete, read_image_size, read_radiograph
from ..schema import (
    HAND_CATEGORY_ID,
    ROI_CATEGORY_ID,
    ROI_REFERENCE_LONG_SIDE,
    ROI_SIZE_PX,
    coco_categories,
    default_landmark_names,
    roi_boxes_xyxy,
    roi_side_px,
)
from ..version import __version__
from . import hand_masks
from .input_problems import (
    ACTION_IMAGE_SKIPPED,
    ACTION_KEYPOINTS_IGNORED,
    ACTION_MASK_IGNORED,
    ACTION_NOTE,
    REPORT_COLUMNS,
    BadRow,
    ProblemLog,
    RSNAFormatError,
)
from .keypoint_files import (
    DEFAULT_NUM_KEYPOINTS,
    HandKeypoints,
    KeypointFile,
    first_keypoint_outside,
    read_keypoints,
)
from .label_files import (
    AGE_HEADERS,
    ID_HEADERS,
    MALE_HEADERS,
    MAX_AGE_MONTHS,
    SEX_HEADERS,
    parse_sex,
    read_labels,
)

__all__ = [
    "ACTION_IMAGE_SKIPPED",
    "ACTION_KEYPOINTS_IGNORED",
    "ACTION_MASK_IGNORED",
    "ACTION_NOTE",
    "AGE_HEADERS",
    "BadRow",
    "ConversionReport",
    "HandKeypoints",
    "ID_HEADERS",
    "KeypointFile",
    "MALE_HEADERS",
    "MAX_AGE_MONTHS",
    "RAW_SPLITS",
    "RSNAFormatError",
    "RawSplit",
    "SEX_HEADERS",
    "convert_split",
    "find_raw_splits",
    "parse_sex",
    "read_keypoints",
    "read_labels",
    "roi_box",
]

# --- constants -----------------------------------------------------------------------------------

MIN_HAND_AREA_FRACTION = 0.01  # mask components smaller than this share of the image are dropped
COORD_DECIMALS = 4  # computed boxes/areas are rounded to this many decimals (stable json)


# --- geometry ------------------------------------------------------------------------------------


def _r(value: float) -> float:
    return round(float(value), COORD_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def roi_box(
    x: float,
    y: float,
    width: int,
    height: int,
    roi_size_px: float = ROI_SIZE_PX,
    roi_reference_long_side: float = ROI_REFERENCE_LONG_SIDE,
) -> list[float] | None:
    """Square ROI box ``[x, y, w, h]`` around a keypoint given in COCO convention (pixel index).

    The box is centred at the continuous position ``(x + 0.5, y + 0.5)``, its side is
    ``roi_side_px`` (64 px at a 512-px long side by default, in original-image pixels), and it is
    clipped to ``[0, width] x [0, height]``. Returns None when nothing of the box is inside.
    """
    boxes = _roi_boxes(np.array([[x, y, 2.0]]), width, height, roi_size_px, roi_reference_long_side)
    return boxes[0][1] if boxes else None


def _roi_boxes(
    kps: np.ndarray, width: int, height: int, roi_size_px: float, roi_reference_long_side: float
) -> list[tuple[int, list[float]]]:
    """``(landmark index, [x, y, w, h])`` for every visible keypoint ([K, 3], COCO convention)."""
    index = np.flatnonzero(kps[:, 2] > 0)
    if len(index) == 0:
        return []
    side = roi_side_px(height, width, roi_size_px, roi_reference_long_side)
    xyxy, keep = roi_boxes_xyxy(kps[index, :2] + 0.5, side, width, height)
    boxes = np.round(
        np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1), COORD_DECIMALS
    )
    boxes = boxes + 0.0  # -0.0 -> 0.0
    return [(int(j), b) for j, b, k in zip(index.tolist(), boxes.tolist(), keep.tolist()) if k]


def _clip_box(box: Sequence[float], width: int, height: int) -> list[float] | None:
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return [_r(x0), _r(y0), _r(x1 - x0), _r(y1 - y0)]


def _keypoint_extent(kps: np.ndarray, width: int, height: int) -> list[float] | None:
    vis = kps[kps[:, 2] > 0]
    if len(vis) == 0:
        return None
    x0, y0 = vis[:, 0].min() + 0.5, vis[:, 1].min() + 0.5
    x1, y1 = vis[:, 0].max() + 0.5, vis[:, 1].max() + 0.5
    return _clip_box([x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)], width, height)


def _coco_keypoints(kps: np.ndarray | None, k: int) -> tuple[list[float | int], int]:
    """Flat COCO keypoint list (invisible points as 0, 0, 0) and the visible count."""
    if kps is None:
        return [0.0, 0.0, 0] * k, 0
    flat: list[float | int] = []
    for x, y, v in kps.tolist():
        flat += [float(x), float(y), int(v)] if v > 0 else [0.0, 0.0, 0]
    return flat, int((kps[:, 2] > 0).sum())


def _rle(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


# --- per-image conversion (runs in worker processes) ---------------------------------------------


@dataclass
class _ImageJob:
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


@dataclass
class _ImageResult:
    rsna_id: str
    ok: bool
    width: int = 0
    height: int = 0
    has_keypoints: bool = False
    hands: list[dict[str, Any]] = field(default_factory=list)
    rois: list[dict[str, Any]] = field(default_factory=list)
    issues: list[BadRow] = field(default_factory=list)


def _reason(err: Exception, path: str) -> str:
    """An ImageReadError message without the (possibly absolute) path prefix."""
    text = str(err)
    return text[len(path) + 2 :] if text.startswith(path + ": ") else text


def _convert_image(job: _ImageJob) -> _ImageResult:
    res = _ImageResult(job.rsna_id, ok=False)

    def label_issue(reason: str, action: str = ACTION_IMAGE_SKIPPED, fieldname: str = "") -> None:
        res.issues.append(
            BadRow(job.labels_name, job.label_row, fieldname or job.id_field, reason, action)
        )

    # 1. the image: existence, header (size), trailer (truncation); pixels only for derivation
    if not os.path.isfile(job.image_path):
        label_issue(f"image file '{job.image_ref}' not found")
        return res
    try:
        width, height = read_image_size(job.image_path)
        check_image_complete(job.image_path)
        mask = None
        if job.derive_mask:
            mask = hand_masks.derive_hand_mask(read_radiograph(job.image_path))
    except ImageReadError as e:
        label_issue(f"image '{job.image_ref}': {_reason(e, job.image_path)}")
        return res
    res.ok, res.width, res.height = True, int(width), int(height)

    # 2. a stored mask
    if job.mask_path is not None:
        try:
            stored = hand_masks.read_mask(job.mask_path)
        except ImageReadError as e:
            label_issue(f"mask '{job.mask_ref}': {_reason(e, job.mask_path)}", ACTION_MASK_IGNORED)
        else:
            if stored.shape != (height, width):
                label_issue(
                    f"mask '{job.mask_ref}' is {stored.shape[1]}x{stored.shape[0]}, "
                    f"the image is {width}x{height}",
                    ACTION_MASK_IGNORED,
                )
            else:
                mask = stored

    # 3. keypoints, checked against the real image size
    hand = job.hand
    if hand is not None:
        assert job.keypoints_name is not None
        kp_field = f"{hand.hand}hand_kpts" if hand.hand else "keypoints"
        hit = first_keypoint_outside(hand.keypoints, width, height)
        if hand.image_size is not None and hand.image_size != (width, height):
            res.issues.append(
                BadRow(
                    job.keypoints_name,
                    hand.row,
                    "width/height",
                    f"the keypoint json gives {hand.image_size[0]}x{hand.image_size[1]} for "
                    f"'{job.image_ref}', the PNG is {width}x{height}",
                    ACTION_KEYPOINTS_IGNORED,
                )
            )
            hand = None
        elif hit is not None:
            j, x, y = hit
            res.issues.append(
                BadRow(
                    job.keypoints_name,
                    hand.row,
                    kp_field,
                    f"keypoint {j} (x={x:g}, y={y:g}) is outside the {width}x{height} image "
                    f"'{job.image_ref}'",
                    ACTION_KEYPOINTS_IGNORED,
                )
            )
            hand = None
    res.has_keypoints = hand is not None
    k = job.num_keypoints

    # 4. hand instances: mask components, else the keypoint json's box
    def note(reason: str) -> None:
        label_issue(reason, ACTION_NOTE, "mask")

    if mask is not None:
        res.hands = _hands_from_mask(mask, hand, k, note)
    if not res.hands and hand is not None:
        box = None
        if hand.bbox is not None:
            box = _clip_box(hand.bbox, width, height)
        if box is None:
            box = _keypoint_extent(hand.keypoints, width, height)
        if box is not None:
            kps, num = _coco_keypoints(hand.keypoints, k)
            res.hands = [
                {
                    "category_id": HAND_CATEGORY_ID,
                    "bbox": box,
                    "area": _r(box[2] * box[3]),
                    "iscrowd": 0,
                    "keypoints": kps,
                    "num_keypoints": num,
                }
            ]

    # 5. anatomical ROI boxes, one per visible keypoint
    if hand is not None:
        for j, box in _roi_boxes(
            hand.keypoints, width, height, job.roi_size_px, job.roi_reference_long_side
        ):
            res.rois.append(
                {
                    "category_id": ROI_CATEGORY_ID,
                    "bbox": box,
                    "area": _r(box[2] * box[3]),
                    "iscrowd": 0,
                    "landmark": j,
                }
            )
    return res


def _hands_from_mask(mask: np.ndarray, hand: HandKeypoints | None, k: int, note) -> list[dict]:
    """One hand per large connected component; keypoints go to the one holding most of them."""
    height, width = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    min_area = MIN_HAND_AREA_FRACTION * height * width
    comps = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    if not comps:
        note(
            "the hand mask has no component of at least "
            f"{MIN_HAND_AREA_FRACTION:.0%} of the image; no hand instance from the mask"
        )
        return []
    area = {i: int(stats[i, cv2.CC_STAT_AREA]) for i in comps}
    primary = None
    if hand is not None:
        vis = hand.keypoints[hand.keypoints[:, 2] > 0]
        xi = np.clip(np.floor(vis[:, 0] + 0.5).astype(np.int64), 0, width - 1)
        yi = np.clip(np.floor(vis[:, 1] + 0.5).astype(np.int64), 0, height - 1)
        counts = np.bincount(labels[yi, xi], minlength=n)
        primary = max(comps, key=lambda i: (int(counts[i]), area[i], -i))
        if counts[primary] == 0:
            note("no keypoint lies on the hand mask; keypoints attached to the largest component")
    order = sorted(comps, key=lambda i: (i != primary, -area[i], i))
    hands = []
    for i in order:
        x, y, w, h = (int(v) for v in stats[i, :4])
        kps, num = _coco_keypoints(hand.keypoints if i == primary else None, k)
        hands.append(
            {
                "category_id": HAND_CATEGORY_ID,
                "bbox": [float(x), float(y), float(w), float(h)],
                "area": float(area[i]),
                "iscrowd": 0,
                "segmentation": _rle(labels == i),
                "keypoints": kps,
                "num_keypoints": num,
            }
        )
    return hands


# --- the converter -------------------------------------------------------------------------------


@dataclass
class ConversionReport:
    """What :func:`convert_split` did: counts, the files written and every reported row."""

    split: str
    output_json: str
    report_path: str
    keypoint_format: str | None
    num_keypoints: int
    num_label_rows: int
    num_images: int
    num_with_keypoints: int
    num_hands: int
    num_rois: int
    issues: list[BadRow] = field(default_factory=list)

    @property
    def skipped_images(self) -> int:
        """Label rows that did not become an image (bad row or bad image)."""
        return len({(b.file, b.row) for b in self.issues if b.action == ACTION_IMAGE_SKIPPED})

    @property
    def bad_rows(self) -> list[BadRow]:
        """Reported problems (every issue except notes)."""
        return [b for b in self.issues if b.action != ACTION_NOTE]

    def summary(self) -> str:
        """One line of counts, as the CLI prints it."""
        return (
            f"{self.split}: {self.num_images} images ({self.num_with_keypoints} with keypoints, "
            f"format {self.keypoint_format or 'none'}, K={self.num_keypoints}), "
            f"{self.num_hands} hands, {self.num_rois} ROI boxes, "
            f"{self.skipped_images} label rows skipped, {len(self.bad_rows)} problems reported"
        )


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def _labels_frame(
    labels: str | os.PathLike | pd.DataFrame, strict: bool, require_age: bool | None
) -> tuple[pd.DataFrame, str, str, str | None, list[BadRow]]:
    """(frame, file name, id field, source path, bad rows) for a path or an already-read frame."""
    if isinstance(labels, pd.DataFrame):
        missing = {"id", "boneage", "male"} - set(labels.columns)
        if missing:
            raise ValueError(f"labels DataFrame lacks columns {sorted(missing)}")
        df = labels.copy()
        df["id"] = df["id"].map(lambda v: str(int(v)))
        if "row" not in df.columns:
            df["row"] = np.arange(1, len(df) + 1)
        name = str(labels.attrs.get("source_name", "labels"))
        fields = labels.attrs.get("fields") or {}
        bad = list(labels.attrs.get("bad_rows") or [])
        if strict and any(b.action != ACTION_NOTE for b in bad):
            raise RSNAFormatError(next(b for b in bad if b.action != ACTION_NOTE))
        return df, name, fields.get("id", "id"), labels.attrs.get("source"), bad
    bad_rows: list[BadRow] = []
    df = read_labels(labels, strict=strict, require_age=require_age, bad_rows=bad_rows)
    return df, df.attrs["source_name"], df.attrs["fields"]["id"], os.fspath(labels), bad_rows


def _run_jobs(jobs: list[_ImageJob], workers: int, progress: bool) -> Iterator[_ImageResult]:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="convert", unit="img", disable=not progress)
    try:
        if workers > 1 and len(jobs) > 1:
            chunk = max(1, min(64, len(jobs) // (workers * 8)))
            with Pool(processes=workers) as pool:
                for res in pool.imap(_convert_image, jobs, chunksize=chunk):
                    bar.update(1)
                    yield res
        else:
            for job in jobs:
                res = _convert_image(job)
                bar.update(1)
                yield res
    finally:
        bar.close()


def convert_split(
    labels: str | os.PathLike | pd.DataFrame,
    image_dir: str | os.PathLike,
    output_json: str | os.PathLike,
    keypoints: str | os.PathLike | KeypointFile | None = None,
    mask_dir: str | os.PathLike | None = None,
    derive_masks: bool = False,
    roi_size_px: float = ROI_SIZE_PX,
    roi_reference_long_side: float = ROI_REFERENCE_LONG_SIDE,
    strict: bool = False,
    workers: int = 1,
    progress: bool = True,
    split_name: str | None = None,
    report_path: str | os.PathLike | None = None,
    require_age: bool | None = None,
) -> ConversionReport:
    """Convert one RSNA split into one COCO json (``docs/data.md``, "Converted COCO json").

    ``labels``: a label file (read with :func:`read_labels`) or its DataFrame; ``image_dir``:
    the folder of ``<id>.png``; ``keypoints``: a keypoint json (or a :class:`KeypointFile`);
    ``mask_dir``: stored masks ``<id>_mask.png``; ``derive_masks``: derive masks from the pixels
    instead (:func:`boneage_d2.convert.hand_masks.derive_hand_mask`; excludes ``mask_dir``).
    ``roi_size_px`` / ``roi_reference_long_side``: ROI side in pixels at that long side, scaled
    to each image. ``workers`` > 1 runs the per-image work on a process pool. ``split_name``
    defaults to the output's stem; ``report_path`` to ``<output stem>.skipped.csv`` beside it.

    Images (sorted by id) carry ``boneage`` (months or null), ``male``, ``rsna_id`` and
    ``has_keypoints``; an image whose keypoints are missing or bad is kept without them. Every
    bad row is skipped and written to the report CSV (columns file, row, field, action, reason),
    or, with ``strict=True``, the first one raises ``RSNAFormatError`` before anything is
    written. Output files are written atomically; reruns give byte-identical files.
    """
    if derive_masks and mask_dir is not None:
        raise ValueError("give either mask_dir (stored masks) or derive_masks=True, not both")
    if not (roi_size_px > 0 and roi_reference_long_side > 0):
        raise ValueError("roi_size_px and roi_reference_long_side must be positive")
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: image folder not found")
    if mask_dir is not None and not Path(mask_dir).is_dir():
        raise FileNotFoundError(f"{mask_dir}: mask folder not found")
    output_json = Path(output_json)
    out_dir = Path(os.path.abspath(output_json.parent))
    split = split_name or output_json.stem
    report = (
        Path(report_path)
        if report_path
        else output_json.with_name(f"{output_json.stem}.skipped.csv")
    )
    issues = ProblemLog(strict)

    # labels
    df, labels_name, id_field, labels_source, label_bad = _labels_frame(labels, strict, require_age)
    issues.extend(label_bad)
    num_label_rows = len(df) + len({b.row for b in label_bad if b.action == ACTION_IMAGE_SKIPPED})
    sources: dict[str, str] = {}
    if labels_source and os.path.isfile(labels_source):
        sources[labels_name] = sha1_file(labels_source)

    # keypoints
    kp_file: KeypointFile | None = None
    if keypoints is not None:
        if isinstance(keypoints, KeypointFile):
            kp_file = keypoints
            issues.extend(kp_file.issues)
        else:
            kp_file = read_keypoints(keypoints, strict=strict, bad_rows=issues.items)
        if os.path.isfile(kp_file.path):
            sources[kp_file.name] = sha1_file(kp_file.path)
    k = kp_file.num_keypoints if kp_file else DEFAULT_NUM_KEYPOINTS
    names = kp_file.keypoint_names if kp_file else default_landmark_names(k)

    # join: keypoints of images that are not (validly) in the labels
    label_ids = set(df["id"])
    if kp_file is not None:
        for rid, hand in sorted(kp_file.hands.items(), key=lambda item: item[1].row):
            if rid not in label_ids:
                issues.add(
                    BadRow(
                        kp_file.name,
                        hand.row,
                        "file_name",
                        f"keypoints for image {rid}.png, which is not among the valid rows "
                        f"of {labels_name}",
                        ACTION_KEYPOINTS_IGNORED,
                    )
                )

    # per-image work, in id order
    df = df.assign(_key=df["id"].astype(np.int64)).sort_values("_key", kind="stable")
    image_folder = image_dir.name or str(image_dir)
    mask_folder = Path(mask_dir).name if mask_dir is not None else None
    jobs = []
    for rid, row in zip(df["id"].tolist(), df["row"].tolist()):
        mask_path = (
            os.fspath(hand_masks.mask_path_for(mask_dir, rid)) if mask_dir is not None else None
        )
        jobs.append(
            _ImageJob(
                rsna_id=rid,
                label_row=int(row),
                image_path=os.fspath(image_dir / f"{rid}.png"),
                image_ref=f"{image_folder}/{rid}.png",
                mask_path=mask_path,
                mask_ref=f"{mask_folder}/{rid}{hand_masks.MASK_SUFFIX}" if mask_path else None,
                derive_mask=derive_masks,
                hand=kp_file.hands.get(rid) if kp_file else None,
                num_keypoints=k,
                roi_size_px=float(roi_size_px),
                roi_reference_long_side=float(roi_reference_long_side),
                labels_name=labels_name,
                id_field=id_field,
                keypoints_name=kp_file.name if kp_file else None,
            )
        )
    by_id = {rid: (age, male) for rid, age, male in zip(df["id"], df["boneage"], df["male"])}

    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    num_hands = num_rois = num_kp = 0
    results = _run_jobs(jobs, max(1, int(workers)), progress)
    try:
        for res, job in zip(results, jobs):
            issues.extend(res.issues)
            if not res.ok and job.hand is not None and kp_file is not None:
                issues.add(
                    BadRow(
                        kp_file.name,
                        job.hand.row,
                        "file_name",
                        f"keypoints for image {job.rsna_id}.png, which has no usable PNG "
                        f"(see {labels_name} row {job.label_row})",
                        ACTION_KEYPOINTS_IGNORED,
                    )
                )
            if not res.ok:
                continue
            age, male = by_id[res.rsna_id]
            image_id = int(res.rsna_id)
            rel = os.path.relpath(os.path.abspath(job.image_path), out_dir).replace(os.sep, "/")
            images.append(
                {
                    "id": image_id,
                    "file_name": rel,
                    "width": res.width,
                    "height": res.height,
                    "rsna_id": res.rsna_id,
                    "boneage": None if math.isnan(age) else float(age),
                    "male": bool(male),
                    "has_keypoints": res.has_keypoints,
                }
            )
            num_kp += int(res.has_keypoints)
            for ann in res.hands + res.rois:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
            num_hands += len(res.hands)
            num_rois += len(res.rois)
    finally:
        results.close()  # in strict mode, stops the worker pool at once

    if derive_masks:
        mask_source = "derived (boneage_d2.convert.hand_masks)"
    elif mask_dir is not None:
        mask_source = f"folder {mask_folder}"
    else:
        mask_source = "none"
    coco = {
        "info": {
            "description": "RSNA Pediatric Bone Age, converted by boneage_d2.convert.rsna",
            "version": __version__,
            "split": split,
            "keypoint_format": kp_file.format if kp_file else None,
            "roi_size_px": _number(roi_size_px),
            "roi_reference_long_side": _number(roi_reference_long_side),
            "source": dict(sorted(sources.items())),
            "hand_masks": mask_source,
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": coco_categories(names),
    }
    text = json.dumps(coco, ensure_ascii=False, allow_nan=False)  # C encoder: ~5x json.dump
    with atomic_open(output_json, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
    with atomic_open(report, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        for b in issues.items:
            writer.writerow([b.file, b.row, b.field, b.action, b.reason])

    return ConversionReport(
        split=split,
        output_json=os.fspath(output_json),
        report_path=os.fspath(report),
        keypoint_format=kp_file.format if kp_file else None,
        num_keypoints=k,
        num_label_rows=num_label_rows,
        num_images=len(images),
        num_with_keypoints=num_kp,
        num_hands=num_hands,
        num_rois=num_rois,
        issues=list(issues.items),
    )


# --- the raw layout (docs/data.md) ---------------------------------------------------------------


@dataclass(frozen=True)
class RawSplit:
    """One split found under an RSNA root: its label file, image folder and keypoint json."""

    name: str
    labels: Path
    images: Path
    keypoints: Path | None
    require_age: bool


# Default file names of the raw layout, per split; the first label file that exists wins (the
# test ground truth before the label-less test CSV).
RAW_SPLITS: dict[str, dict[str, Any]] = {
    "train": {
        "labels": ("boneage-training-dataset.csv",),
        "images": "boneage-training-dataset",
        "keypoints": "RSNA_Anatomical_ROIs_Training.json",
    },
    "val": {
        "labels": ("Validation Dataset.csv",),
        "images": "boneage-validation-dataset",
        "keypoints": "RSNA_Anatomical_ROIs_Validation.json",
    },
    "test": {
        "labels": (
            "Bone age ground truth.xlsx",
            "Bone age ground truth.csv",
            "boneage-test-dataset.csv",
        ),
        "images": "boneage-test-dataset",
        "keypoints": "RSNA_Anatomical_ROIs_Test.json",
    },
}


def find_raw_splits(root: str | os.PathLike) -> list[RawSplit]:
    """The splits present under ``root`` in the raw layout (a split exists when its label file
    does); image folders are not checked here. Ages are required except for the test CSV."""
    root = Path(root)
    found = []
    for name, spec in RAW_SPLITS.items():
        labels = next((root / f for f in spec["labels"] if (root / f).is_file()), None)
        if labels is None:
            continue
        kp = root / spec["keypoints"]
        found.append(
            RawSplit(
                name=name,
                labels=labels,
                images=root / spec["images"],
                keypoints=kp if kp.is_file() else None,
                require_age=labels.name != "boneage-test-dataset.csv",
            )
        )
    return found
