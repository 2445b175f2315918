"""RSNA Pediatric Bone Age -> COCO json: the whole pipeline behind one import.

The contract is ``docs/data.md`` (raw layout, pixel conventions, the converted json). The
pieces, each in its own module:

- :func:`read_labels` (``label_files``) reads any of the published RSNA label files (.csv or
  .xlsx) by header name, never by position, and validates every row.
- :func:`read_keypoints` (``keypoint_files``) reads BoNet-style COCO keypoint json (17 points,
  or any K) and COCO-WholeBody hand annotations (21 points), detecting the format.
- :func:`read_roi_folder` (``roi_files``) reads hand-drawn ROI boxes, one Pascal VOC XML per
  film, each box given its canonical landmark (``roi_order``).
- :func:`convert_split` (``converter``) joins labels, PNG headers, keypoints, optional hand
  masks (``image_records``, ``hand_masks``) and drawn ROI boxes into one COCO json per split,
  atomically and deterministically, and reports every skipped row (:class:`ConversionReport`,
  ``report``).
- :func:`find_raw_splits` (``raw_layout``) finds the splits of a raw RSNA folder.

Bad input never passes silently. Every problem is a :class:`BadRow` (``input_problems``) naming
the file, the row and the field. By default a bad row is skipped and reported in
``<output stem>.skipped.csv``; ``strict=True`` raises :class:`RSNAFormatError` on the first one.
Problems that make a whole file unusable (missing file, missing column, invalid json) raise in
both modes.
"""

from __future__ import annotations

from .converter import convert_split
from .geometry import roi_box
from .input_problems import (
    ACTION_IMAGE_SKIPPED,
    ACTION_KEYPOINTS_IGNORED,
    ACTION_MASK_IGNORED,
    ACTION_NOTE,
    ACTION_ROIS_IGNORED,
    BadRow,
    RSNAFormatError,
)
from .keypoint_files import HandKeypoints, KeypointFile, read_keypoints
from .label_files import (
    AGE_HEADERS,
    ID_HEADERS,
    MALE_HEADERS,
    MAX_AGE_MONTHS,
    SEX_HEADERS,
    parse_sex,
    read_labels,
)
from .raw_layout import RAW_SPLITS, RawSplit, find_raw_splits
from .report import ConversionReport
from .roi_files import DrawnROIs, ROIFolder, read_roi_folder

__all__ = [
    "ACTION_IMAGE_SKIPPED",
    "ACTION_KEYPOINTS_IGNORED",
    "ACTION_MASK_IGNORED",
    "ACTION_NOTE",
    "ACTION_ROIS_IGNORED",
    "AGE_HEADERS",
    "BadRow",
    "ConversionReport",
    "DrawnROIs",
    "HandKeypoints",
    "ID_HEADERS",
    "KeypointFile",
    "MALE_HEADERS",
    "MAX_AGE_MONTHS",
    "RAW_SPLITS",
    "ROIFolder",
    "RSNAFormatError",
    "RawSplit",
    "SEX_HEADERS",
    "convert_split",
    "find_raw_splits",
    "parse_sex",
    "read_keypoints",
    "read_labels",
    "read_roi_folder",
    "roi_box",
]
