"""What a conversion did: :class:`ConversionReport` and the ``<split>.skipped.csv`` it writes."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..io.atomic import atomic_open
from .input_problems import ACTION_IMAGE_SKIPPED, ACTION_NOTE, REPORT_COLUMNS, BadRow

__all__ = ["ConversionReport", "write_problem_report"]


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
    num_mask_misses: int = 0  # images whose hand mask misses keypoints (a note each)
    num_with_drawn_rois: int = 0  # images whose ROI boxes are hand-drawn (``rois``)
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
        drawn = f" ({self.num_with_drawn_rois} films drawn)" if self.num_with_drawn_rois else ""
        return (
            f"{self.split}: {self.num_images} images ({self.num_with_keypoints} with keypoints, "
            f"format {self.keypoint_format or 'none'}, K={self.num_keypoints}), "
            f"{self.num_hands} hands, {self.num_rois} ROI boxes{drawn}, "
            f"{self.skipped_images} label rows skipped, {len(self.bad_rows)} problems reported, "
            f"{self.num_mask_misses} hand masks missing keypoints"
        )


def write_problem_report(path: str | os.PathLike, problems: Iterable[BadRow]) -> None:
    """Write ``problems`` as CSV (columns file, row, field, action, reason), atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        for b in problems:
            writer.writerow([b.file, b.row, b.field, b.action, b.reason])
