"""Problems found in RSNA-style input: one :class:`BadRow` each, naming file, row and field.

Label rows are 1-based data rows (the first row under the header is row 1; a blank line still
counts), keypoint rows are 1-based positions in the json's ``annotations`` list, ROI box file
(Pascal VOC XML) rows are 1-based positions of its ``<object>`` elements, and row 0 means the
file itself (its header or its structure). A :class:`ProblemLog` collects them; in strict
mode the first one that is not a note raises :class:`RSNAFormatError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ACTION_IMAGE_SKIPPED",
    "ACTION_KEYPOINTS_IGNORED",
    "ACTION_MASK_IGNORED",
    "ACTION_NOTE",
    "ACTION_ROIS_IGNORED",
    "REPORT_COLUMNS",
    "BadRow",
    "ProblemLog",
    "RSNAFormatError",
]

# What happened to the input a BadRow describes (the report's "action" column).
ACTION_IMAGE_SKIPPED = "image skipped"
ACTION_KEYPOINTS_IGNORED = "keypoints ignored"
ACTION_MASK_IGNORED = "mask ignored"
ACTION_ROIS_IGNORED = "ROI boxes ignored"  # a film's drawn ROI boxes (its XML file)
ACTION_NOTE = "note"  # informational, never raised in strict mode

REPORT_COLUMNS = ("file", "row", "field", "action", "reason")


@dataclass(frozen=True)
class BadRow:
    """One problem in the input: ``file`` (base name), 1-based ``row`` (0 = the file itself),
    ``field`` (a column header or json key), ``reason``, and the ``action`` taken."""

    file: str
    row: int
    field: str
    reason: str
    action: str = ACTION_IMAGE_SKIPPED

    def __str__(self) -> str:
        where = "row 0 (header)" if self.row == 0 else f"row {self.row}"
        return f"{self.file} {where} field '{self.field}': {self.reason}"


class RSNAFormatError(ValueError):
    """Invalid RSNA input; the message names the file, row and field (``BadRow`` format)."""

    def __init__(self, bad: BadRow | str):
        if isinstance(bad, str):
            super().__init__(bad)
            self.bad = None
        else:
            super().__init__(str(bad))
            self.bad = bad

    @property
    def file(self) -> str | None:
        return self.bad.file if self.bad else None

    @property
    def row(self) -> int | None:
        return self.bad.row if self.bad else None

    @property
    def field(self) -> str | None:
        return self.bad.field if self.bad else None


class ProblemLog:
    """Collects BadRows; in strict mode the first non-note one raises ``RSNAFormatError``."""

    def __init__(self, strict: bool, sink: list[BadRow] | None = None):
        self.strict = strict
        self.items: list[BadRow] = sink if sink is not None else []

    def add(self, bad: BadRow) -> None:
        if self.strict and bad.action != ACTION_NOTE:
            raise RSNAFormatError(bad)
        self.items.append(bad)

    def extend(self, bads: Sequence[BadRow]) -> None:
        for bad in bads:
            self.add(bad)
