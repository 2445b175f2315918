"""The split converter: labels + PNG headers + keypoints (+ hand masks, drawn ROI boxes) -> one
COCO json.

:func:`convert_split` reads and validates the label file and the keypoint json, runs
:func:`~boneage_d2.convert.image_records.convert_image` for every valid label row (in id order,
optionally on a process pool), and writes the COCO json and the report of skipped rows, both
atomically and deterministically (reruns give byte-identical files).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io.atomic import atomic_open, sha1_file
from ..io.image_header import DEFAULT_MAX_PIXELS
from ..schema import ROI_REFERENCE_LONG_SIDE, ROI_SIZE_PX, coco_categories, default_landmark_names
from ..version import __version__
from . import hand_masks
from .image_records import ImageJob, ImageResult, convert_image
from .input_problems import (
    ACTION_IMAGE_SKIPPED,
    ACTION_KEYPOINTS_IGNORED,
    ACTION_NOTE,
    ACTION_ROIS_IGNORED,
    BadRow,
    ProblemLog,
    RSNAFormatError,
)
from .keypoint_files import DEFAULT_NUM_KEYPOINTS, KeypointFile, read_keypoints
from .label_files import read_labels
from .parallel import map_in_order
from .report import ConversionReport, write_problem_report
from .roi_files import ROIFolder, read_roi_folder

__all__ = ["convert_split"]

# The json's info.description names the public module of the converter; kept as it is so that
# converted files stay byte-identical across versions of this package's internal layout.
_DESCRIPTION = "RSNA Pediatric Bone Age, converted by boneage_d2.convert.rsna"


@dataclass(frozen=True)
class _ImageSettings:
    """Where a split's images and masks are, and how ROI boxes are sized."""

    image_dir: Path
    mask_dir: str | os.PathLike | None
    derive_masks: bool
    roi_size_px: float
    roi_reference_long_side: float
    max_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def checked(
        cls,
        image_dir: str | os.PathLike,
        mask_dir: str | os.PathLike | None,
        derive_masks: bool,
        roi_size_px: float,
        roi_reference_long_side: float,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> _ImageSettings:
        """The settings; ValueError / FileNotFoundError for ones that cannot work."""
        if derive_masks and mask_dir is not None:
            raise ValueError("give either mask_dir (stored masks) or derive_masks=True, not both")
        if not (roi_size_px > 0 and roi_reference_long_side > 0):
            raise ValueError("roi_size_px and roi_reference_long_side must be positive")
        image_dir = Path(image_dir)
        if not image_dir.is_dir():
            raise FileNotFoundError(f"{image_dir}: image folder not found")
        if mask_dir is not None and not Path(mask_dir).is_dir():
            raise FileNotFoundError(f"{mask_dir}: mask folder not found")
        return cls(
            image_dir, mask_dir, derive_masks, roi_size_px, roi_reference_long_side, max_pixels
        )

    @property
    def mask_source(self) -> str:
        """Where the hand masks come from, for the json's ``info.hand_masks``."""
        if self.derive_masks:
            return "derived (boneage_d2.convert.hand_masks)"
        if self.mask_dir is not None:
            return f"folder {Path(self.mask_dir).name}"
        return "none"


@dataclass
class _Labels:
    """A split's validated labels: the frame of valid rows, the file name and id header that
    problems cite, the file's path (None for a frame without one) and its bad rows."""

    frame: pd.DataFrame
    name: str
    id_field: str
    source: str | None
    bad_rows: list[BadRow]

    @property
    def num_rows(self) -> int:
        """Data rows of the label file: the valid ones and the skipped ones."""
        skipped = {b.row for b in self.bad_rows if b.action == ACTION_IMAGE_SKIPPED}
        return len(self.frame) + len(skipped)


def _read_label_input(
    labels: str | os.PathLike | pd.DataFrame, strict: bool, require_age: bool | None
) -> _Labels:
    """The labels of a path (read with :func:`read_labels`) or of an already-read frame."""
    if not isinstance(labels, pd.DataFrame):
        bad_rows: list[BadRow] = []
        df = read_labels(labels, strict=strict, require_age=require_age, bad_rows=bad_rows)
        return _Labels(
            df, df.attrs["source_name"], df.attrs["fields"]["id"], os.fspath(labels), bad_rows
        )
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
    return _Labels(df, name, fields.get("id", "id"), labels.attrs.get("source"), bad)


def _read_keypoint_input(
    keypoints: str | os.PathLike | KeypointFile | None, strict: bool, issues: ProblemLog
) -> KeypointFile | None:
    """The keypoint file of a path or an already-read :class:`KeypointFile`; its problems are
    added to ``issues``."""
    if keypoints is None:
        return None
    if isinstance(keypoints, KeypointFile):
        issues.extend(keypoints.issues)
        return keypoints
    return read_keypoints(keypoints, strict=strict, bad_rows=issues.items)


def _read_roi_input(
    rois: str | os.PathLike | ROIFolder | None, strict: bool, issues: ProblemLog
) -> ROIFolder | None:
    """The ROI box folder of a path or an already-read :class:`ROIFolder`; its problems are
    added to ``issues``."""
    if rois is None:
        return None
    if isinstance(rois, ROIFolder):
        issues.extend(rois.issues)
        return rois
    return read_roi_folder(rois, strict=strict, bad_rows=issues.items)


def _source_hashes(
    labels: _Labels, kp_file: KeypointFile | None, rois: ROIFolder | None = None
) -> dict[str, str]:
    """SHA-1 of each input file, by file name (sorted), for the json's ``info.source``; a ROI
    box folder as ``<folder>/`` (the SHA-1 of its XML files' names and SHA-1s)."""
    sources: dict[str, str] = {}
    if labels.source and os.path.isfile(labels.source):
        sources[labels.name] = sha1_file(labels.source)
    if kp_file is not None and os.path.isfile(kp_file.path):
        sources[kp_file.name] = sha1_file(kp_file.path)
    if rois is not None:
        sources[f"{rois.name}/"] = rois.sha1
    return dict(sorted(sources.items()))


def _report_unlabelled_keypoints(
    kp_file: KeypointFile, labels: _Labels, issues: ProblemLog
) -> None:
    """Report keypoints of images that are not among the valid label rows (in json order)."""
    label_ids = set(labels.frame["id"])
    for rid, hand in sorted(kp_file.hands.items(), key=lambda item: item[1].row):
        if rid not in label_ids:
            reason = (
                f"keypoints for image {rid}.png, which is not among the valid rows of {labels.name}"
            )
            issues.add(
                BadRow(kp_file.name, hand.row, "file_name", reason, ACTION_KEYPOINTS_IGNORED)
            )


def _report_unlabelled_rois(
    rois: ROIFolder, labels: _Labels, image_dir: Path, issues: ProblemLog
) -> None:
    """Report drawn ROI boxes of films that are not among the valid label rows: a note when the
    film's image exists (a ROI folder may span several splits), a problem when it does not."""
    label_ids = set(labels.frame["id"])
    for rid, film in sorted(rois.films.items(), key=lambda item: item[1].file):
        if rid in label_ids:
            continue
        image = image_dir / f"{rid}.png"
        if image.is_file():
            reason = f"film {rid} is not among the valid rows of {labels.name}; boxes unused"
            issues.add(BadRow(film.file, 0, "filename", reason, ACTION_NOTE))
        else:
            reason = (
                f"film {rid} has no image: '{image_dir.name}/{rid}.png' not found and no row "
                f"in {labels.name}"
            )
            issues.add(BadRow(film.file, 0, "filename", reason, ACTION_ROIS_IGNORED))


def _image_jobs(
    frame: pd.DataFrame,
    labels: _Labels,
    kp_file: KeypointFile | None,
    num_keypoints: int,
    settings: _ImageSettings,
    rois: ROIFolder | None = None,
) -> list[ImageJob]:
    """One :class:`ImageJob` per row of ``frame`` (in its order)."""
    image_dir, mask_dir = settings.image_dir, settings.mask_dir
    image_folder = image_dir.name or str(image_dir)
    mask_folder = Path(mask_dir).name if mask_dir is not None else None
    jobs = []
    for rid, row in zip(frame["id"].tolist(), frame["row"].tolist()):
        mask_path = (
            os.fspath(hand_masks.mask_path_for(mask_dir, rid)) if mask_dir is not None else None
        )
        jobs.append(
            ImageJob(
                rsna_id=rid,
                label_row=int(row),
                image_path=os.fspath(image_dir / f"{rid}.png"),
                image_ref=f"{image_folder}/{rid}.png",
                mask_path=mask_path,
                mask_ref=f"{mask_folder}/{rid}{hand_masks.MASK_SUFFIX}" if mask_path else None,
                derive_mask=settings.derive_masks,
                hand=kp_file.hands.get(rid) if kp_file else None,
                num_keypoints=num_keypoints,
                roi_size_px=float(settings.roi_size_px),
                roi_reference_long_side=float(settings.roi_reference_long_side),
                labels_name=labels.name,
                id_field=labels.id_field,
                keypoints_name=kp_file.name if kp_file else None,
                drawn_rois=rois.films.get(rid) if rois else None,
                max_pixels=settings.max_pixels,
            )
        )
    return jobs


@dataclass
class _Converted:
    """The converted images and annotations of a split, with their counts."""

    images: list[dict[str, Any]]
    annotations: list[dict[str, Any]]
    num_with_keypoints: int = 0
    num_hands: int = 0
    num_rois: int = 0
    num_mask_misses: int = 0  # images whose hand mask misses some of their keypoints
    num_with_drawn_rois: int = 0  # images whose ROI boxes are hand-drawn


def _image_record(
    res: ImageResult, job: ImageJob, age: float, male: bool, out_dir: Path
) -> dict[str, Any]:
    """The json image of a converted result; ``file_name`` is relative to the output folder."""
    rel = os.path.relpath(os.path.abspath(job.image_path), out_dir).replace(os.sep, "/")
    return {
        "id": int(res.rsna_id),
        "file_name": rel,
        "width": res.width,
        "height": res.height,
        "rsna_id": res.rsna_id,
        "boneage": None if math.isnan(age) else float(age),
        "male": bool(male),
        "has_keypoints": res.has_keypoints,
    }


def _collect(
    results: Iterator[ImageResult],
    jobs: list[ImageJob],
    frame: pd.DataFrame,
    labels_name: str,
    kp_file: KeypointFile | None,
    out_dir: Path,
    issues: ProblemLog,
) -> _Converted:
    """Gather the per-image results (in job order) into image records and numbered
    annotations; their problems go to ``issues`` (in strict mode the first one raises)."""
    out = _Converted([], [])
    try:
        for res, job, age, male in zip(results, jobs, frame["boneage"], frame["male"]):
            issues.extend(res.issues)
            if not res.ok:
                if job.hand is not None and kp_file is not None:
                    reason = (
                        f"keypoints for image {job.rsna_id}.png, which has no usable PNG "
                        f"(see {labels_name} row {job.label_row})"
                    )
                    row = job.hand.row
                    issues.add(
                        BadRow(kp_file.name, row, "file_name", reason, ACTION_KEYPOINTS_IGNORED)
                    )
                if job.drawn_rois is not None:
                    reason = (
                        f"film {job.rsna_id} has no usable image "
                        f"(see {labels_name} row {job.label_row})"
                    )
                    issues.add(
                        BadRow(job.drawn_rois.file, 0, "filename", reason, ACTION_ROIS_IGNORED)
                    )
                continue
            image = _image_record(res, job, age, male, out_dir)
            out.images.append(image)
            for ann in res.hands + res.rois:
                number = len(out.annotations) + 1
                out.annotations.append({"id": number, "image_id": image["id"], **ann})
            out.num_with_keypoints += int(res.has_keypoints)
            out.num_hands += len(res.hands)
            out.num_rois += len(res.rois)
            out.num_mask_misses += int(res.keypoints_off_mask > 0)
            out.num_with_drawn_rois += int(any("roi_source" in a for a in res.rois))
    finally:
        results.close()  # in strict mode, stops the worker pool at once
    return out


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def _coco_json(
    split: str,
    labels: _Labels,
    kp_file: KeypointFile | None,
    num_keypoints: int,
    converted: _Converted,
    settings: _ImageSettings,
    rois: ROIFolder | None = None,
) -> dict[str, Any]:
    """The converted json: ``info`` (settings and input hashes), images, annotations and
    the categories (the hand's keypoint names, the ROI box)."""
    names = kp_file.keypoint_names if kp_file else default_landmark_names(num_keypoints)
    return {
        "info": {
            "description": _DESCRIPTION,
            "version": __version__,
            "split": split,
            "keypoint_format": kp_file.format if kp_file else None,
            "roi_size_px": _number(settings.roi_size_px),
            "roi_reference_long_side": _number(settings.roi_reference_long_side),
            "source": _source_hashes(labels, kp_file, rois),
            "hand_masks": settings.mask_source,
        },
        "licenses": [],
        "images": converted.images,
        "annotations": converted.annotations,
        "categories": coco_categories(names),
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as one line of UTF-8 json (no NaN), atomically."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)  # C encoder: ~5x json.dump
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")


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
    rois: str | os.PathLike | ROIFolder | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ConversionReport:
    """Convert one RSNA split into one COCO json (``docs/data.md``, "Converted COCO json").

    ``labels``: a label file (read with :func:`read_labels`) or its DataFrame; ``image_dir``:
    the folder of ``<id>.png``; ``keypoints``: a keypoint json (or a :class:`KeypointFile`);
    ``mask_dir``: stored masks ``<id>_mask.png``; ``derive_masks``: derive masks from the pixels
    instead (:func:`boneage_d2.convert.hand_masks.derive_hand_mask`; excludes ``mask_dir``).
    ``roi_size_px`` / ``roi_reference_long_side``: ROI side in pixels at that long side, scaled
    to each image. ``rois``: a folder of hand-drawn ROI boxes, one Pascal VOC ``<id>.xml`` per
    film (:func:`~boneage_d2.convert.roi_files.read_roi_folder`, or its :class:`ROIFolder`); a
    film's drawn boxes, scaled to its image, replace its keypoint-derived ones. ``max_pixels``:
    an image whose header declares more pixels is skipped (a report row). ``workers`` > 1
    runs the per-image work on a process pool. ``split_name``
    defaults to the output's stem; ``report_path`` to ``<output stem>.skipped.csv`` beside it.

    Images (sorted by id) carry ``boneage`` (months or null), ``male``, ``rsna_id`` and
    ``has_keypoints``; an image whose keypoints are missing or bad is kept without them. Every
    bad row is skipped and written to the report CSV (columns file, row, field, action, reason),
    or, with ``strict=True``, the first one raises ``RSNAFormatError`` before anything is
    written. An image whose hand mask misses some of its keypoints gets a note on its keypoint
    row (counted in ``num_mask_misses``). Output files are written atomically; reruns give
    byte-identical files.
    """
    settings = _ImageSettings.checked(
        image_dir, mask_dir, derive_masks, roi_size_px, roi_reference_long_side, max_pixels
    )
    output_json = Path(output_json)
    split = split_name or output_json.stem
    report = (
        Path(report_path)
        if report_path
        else output_json.with_name(f"{output_json.stem}.skipped.csv")
    )
    issues = ProblemLog(strict)

    label_input = _read_label_input(labels, strict, require_age)
    issues.extend(label_input.bad_rows)
    kp_file = _read_keypoint_input(keypoints, strict, issues)
    k = kp_file.num_keypoints if kp_file else DEFAULT_NUM_KEYPOINTS
    if kp_file is not None:
        _report_unlabelled_keypoints(kp_file, label_input, issues)
    roi_folder = _read_roi_input(rois, strict, issues)
    if roi_folder is not None:
        _report_unlabelled_rois(roi_folder, label_input, settings.image_dir, issues)

    frame = label_input.frame
    frame = frame.assign(_key=frame["id"].astype(np.int64)).sort_values("_key", kind="stable")
    jobs = _image_jobs(frame, label_input, kp_file, k, settings, roi_folder)
    results = map_in_order(convert_image, jobs, max(1, int(workers)), "convert", progress)
    out_dir = Path(os.path.abspath(output_json.parent))
    converted = _collect(results, jobs, frame, label_input.name, kp_file, out_dir, issues)

    coco = _coco_json(split, label_input, kp_file, k, converted, settings, roi_folder)
    _write_json(output_json, coco)
    write_problem_report(report, issues.items)

    return ConversionReport(
        split=split,
        output_json=os.fspath(output_json),
        report_path=os.fspath(report),
        keypoint_format=kp_file.format if kp_file else None,
        num_keypoints=k,
        num_label_rows=label_input.num_rows,
        num_images=len(converted.images),
        num_with_keypoints=converted.num_with_keypoints,
        num_hands=converted.num_hands,
        num_rois=converted.num_rois,
        num_mask_misses=converted.num_mask_misses,
        num_with_drawn_rois=converted.num_with_drawn_rois,
        issues=list(issues.items),
    )
