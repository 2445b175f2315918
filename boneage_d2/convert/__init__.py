"""Offline conversion of the RSNA release (labels, keypoints, hand masks, drawn ROI boxes) into
COCO json.

Torch-free: ``tools/convert_rsna.py`` and these functions run without PyTorch or Detectron2.
"""

from .converter import convert_split
from .geometry import roi_box
from .hand_masks import HandMaskParams, derive_hand_mask, derive_masks
from .input_problems import BadRow, ProblemLog, RSNAFormatError
from .keypoint_files import HandKeypoints, KeypointFile, read_keypoints
from .label_files import parse_sex, read_labels
from .raw_layout import RAW_SPLITS, RawSplit, find_raw_splits
from .report import ConversionReport
from .roi_files import DrawnROIs, ROIFolder, read_roi_folder

__all__ = [
    "BadRow",
    "ConversionReport",
    "DrawnROIs",
    "HandKeypoints",
    "HandMaskParams",
    "KeypointFile",
    "ProblemLog",
    "RAW_SPLITS",
    "ROIFolder",
    "RSNAFormatError",
    "RawSplit",
    "convert_split",
    "derive_hand_mask",
    "derive_masks",
    "find_raw_splits",
    "parse_sex",
    "read_keypoints",
    "read_labels",
    "read_roi_folder",
    "roi_box",
]
