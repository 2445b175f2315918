"""RSNA Pediatric Bone Age -> COCO json: label readers, keypoint readers and the split converter.

The contract is ``docs/data.md`` (raw layout, pixel conventions, the converted json); the input
formats are described in ``DATA_FORMATS.md`` of the design notes. In short:

- :func:`read_labels` reads any of the published RSNA label files (.csv or .xlsx) by header
  name, never by position, and validates every row.
- :func:`read_keypoints` reads BoNet-style COCO keypoint json (17 points, or any K) and
  COCO-WholeBody hand annotations (21 points), detecting the format.
- :func:`convert_split` joins labels, PNG headers, keypoints and optional hand masks into one
  COCO json per split, atomically and deterministically, and reports every skipped row.

Bad input never passes silently. Every problem is a :class:`BadRow` naming the file, the row and
the field. Label rows are 1-based data rows (the first row under the header is row 1; a blank
line still counts), keypoint rows are 1-based positions in the json's ``annotations`` list, and
row 0 means the file itself (its header or its structure). By default a bad row is skipped and
reported in ``<output stem>.skipped.csv``; ``strict=True`` raises :class:`RSNAFormatError` on the
first one. Problems that make a whole file unusable (missing file, missing column, invalid json)
raise in both modes.

Image checks: existence, a readable header (for the size) and the PNG/JPEG trailer (a truncated
file lacks it) are checked for every image without decoding pixels. Corruption inside the
compressed data is only found where pixels are decoded anyway, i.e. when masks are derived
(``derive_masks=True``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from ..utils.io import atomic_open, sha1_file
from . import hand_masks
from .image_io import ImageReadError, check_image_complete, read_image_size, read_radiograph
from .landmarks import default_landmark_names

__all__ = [
    "ACTION_IMAGE_SKIPPED",
    "ACTION_KEYPOINTS_IGNORED",
    "ACTION_MASK_IGNORED",
    "ACTION_NOTE",
    "BadRow",
    "ConversionReport",
    "HandKeypoints",
    "KeypointFile",
    "RAW_SPLITS",
    "RSNAFormatError",
    "RawSplit",
    "convert_split",
    "parse_sex",
    "find_raw_splits",
    "read_keypoints",
    "read_labels",
    "roi_box",
]

# --- constants -----------------------------------------------------------------------------------

MAX_AGE_MONTHS = 240.0  # RSNA ages run 1-228 months; anything above 20 years is an input error
MIN_HAND_AREA_FRACTION = 0.01  # mask components smaller than this share of the image are dropped
DEFAULT_ROI_SIZE_PX = 64.0  # ALA-Net: 64x64 ROI boxes ...
DEFAULT_ROI_REFERENCE_LONG_SIDE = 512  # ... at a 512-px long side
DEFAULT_NUM_KEYPOINTS = 17  # when a keypoint file says nothing about K
COORD_DECIMALS = 4  # computed boxes/areas are rounded to this many decimals (stable json)

# Accepted label headers, compared case-insensitively after trimming and collapsing whitespace.
ID_HEADERS = ("id", "Image ID", "Case ID")
AGE_HEADERS = ("boneage", "Bone Age (months)", "Ground truth bone age (months)")
MALE_HEADERS = ("male",)
SEX_HEADERS = ("Sex",)
_MALE_VALUES = {"true": True, "false": False, "1": True, "0": False}
_SEX_VALUES = {"m": True, "male": True, "f": False, "female": False}

# What happened to the input a BadRow describes (the report's "action" column).
ACTION_IMAGE_SKIPPED = "image skipped"
ACTION_KEYPOINTS_IGNORED = "keypoints ignored"
ACTION_MASK_IGNORED = "mask ignored"
ACTION_NOTE = "note"  # informational, never raised in strict mode

REPORT_COLUMNS = ("file", "row", "field", "action", "reason")
FORMAT_BONET17 = "bonet17"
FORMAT_WHOLEBODY21 = "wholebody21"


# --- errors and report rows ----------------------------------------------------------------------


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


class _Issues:
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


# --- label files ---------------------------------------------------------------------------------


def _norm_header(text: Any) -> str:
    return " ".join(str(text).replace("\ufeff", "").strip().lower().split())


def _cell_text(value: Any) -> str:
    """Spreadsheet/CSV cell as trimmed text (xlsx numbers and booleans rendered like a CSV)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value).strip()


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            with open(path, newline="", encoding=encoding) as f:
                text = f.read()
            break
        except UnicodeDecodeError:
            continue
    # Lines end at \n, \r\n or \r only, as in a text editor; str.splitlines would also break at
    # \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029 inside a cell and shift every later row number.
    lines = io.StringIO(text, newline="").readlines()
    delimiter = _sniff_delimiter(next((ln for ln in lines if ln.strip()), ""))
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    for record in reader:
        if not any(c.strip() for c in record):
            continue
        if header is None:
            header, header_line = record, reader.line_num
        else:
            rows.append((reader.line_num - header_line, [c.strip() for c in record]))
    return header or [], rows


def _read_xlsx_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        header: list[str] | None = None
        header_row = 0
        rows: list[tuple[int, list[str]]] = []
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if not any(cells):
                continue
            if header is None:
                header, header_row = cells, number
            else:
                rows.append((number - header_row, cells))
    finally:
        wb.close()
    return header or [], rows


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header cells and ``(data row number, cells)`` per non-empty row of a .csv/.xlsx file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            return _read_xlsx_rows(path)
        if suffix == ".xls":
            raise RSNAFormatError(
                BadRow(path.name, 0, "-", "old .xls workbooks are not supported; save as .xlsx")
            )
        return _read_csv_rows(path)
    except RSNAFormatError:
        raise
    except Exception as e:  # zip/openpyxl/csv errors: the file as a whole is unreadable
        raise RSNAFormatError(
            BadRow(path.name, 0, "-", f"unreadable label file ({type(e).__name__}: {e})")
        ) from e


def _accepted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names) + " (any case)"


def _match_columns(
    header: list[str], file: str, require_age: bool | None
) -> dict[str, tuple[int, str] | None]:
    """Map canonical fields (id, boneage, male, sex) to ``(column index, header text)``."""
    groups = {
        "id": ID_HEADERS,
        "boneage": AGE_HEADERS,
        "male": MALE_HEADERS,
        "sex": SEX_HEADERS,
    }
    found: dict[str, tuple[int, str] | None] = dict.fromkeys(groups)
    unknown: list[str] = []
    for index, text in enumerate(header):
        norm = _norm_header(text)
        if not norm:
            continue
        for key, names in groups.items():
            if norm in {_norm_header(n) for n in names}:
                if found[key] is not None:
                    raise RSNAFormatError(
                        BadRow(
                            file,
                            0,
                            text,
                            f"two columns for the same field: '{found[key][1]}' and '{text}'",
                        )
                    )
                found[key] = (index, text.strip())
                break
        else:
            unknown.append(text.strip())
    columns = ", ".join(f"'{c.strip()}'" for c in header if c.strip()) or "none"

    def missing(fieldname: str, what: str, names: Sequence[str]) -> RSNAFormatError:
        return RSNAFormatError(
            BadRow(
                file,
                0,
                fieldname,
                f"no {what} column; accepted names: {_accepted(names)}; found columns: {columns}",
            )
        )

    if found["id"] is None:
        raise missing("id", "image id", ID_HEADERS)
    if found["male"] is not None and found["sex"] is not None:
        raise RSNAFormatError(
            BadRow(
                file,
                0,
                found["sex"][1],
                f"both '{found['male'][1]}' and '{found['sex'][1]}' columns; keep one",
            )
        )
    if found["male"] is None and found["sex"] is None:
        raise missing("male", "sex", MALE_HEADERS + SEX_HEADERS)
    if found["boneage"] is None and (require_age or (require_age is None and unknown)):
        # With unrecognised columns present, a missing age column is most likely a renamed one.
        raise missing("boneage", "bone-age", AGE_HEADERS)
    return found


_INT_RE = re.compile(r"^\+?\d+(\.0*)?$")


def _parse_id(text: str) -> tuple[str | None, str | None]:
    if text == "":
        return None, "missing value"
    if not _INT_RE.match(text):
        return None, f"value {text!r} is not an integer id"
    return str(int(text.split(".", 1)[0])), None  # not via float: exact for any length


def _parse_age(text: str) -> tuple[float | None, str | None]:
    if text == "":
        return None, "missing value (NaN)"
    try:
        age = float(text)
    except ValueError:
        return None, f"value {text!r} is not a number"
    if not math.isfinite(age):
        return None, f"value {text!r} is not a finite number"
    if age < 0 or age > MAX_AGE_MONTHS:
        return None, f"value {text!r} is outside 0-{MAX_AGE_MONTHS:g} months"
    return age, None


def parse_sex(text: str, is_male_column: bool) -> tuple[bool | None, str | None]:
    """One RSNA sex cell -> ``(male, None)``, or ``(None, reason)`` when it cannot be read.

    ``is_male_column``: the cell is from a ``male`` column (True/False, 1/0) rather than a
    ``Sex`` column (M/F, male/female).
    """
    table = _MALE_VALUES if is_male_column else _SEX_VALUES
    key = text.strip().lower()
    if is_male_column and key in ("1.0", "0.0"):
        key = key[0]
    if key == "":
        return None, "missing value"
    if key not in table:
        accepted = (
            "True/False, TRUE/FALSE, true/false, 1/0" if is_male_column else "M/F, male/female"
        )
        return None, f"value {text!r} is not a known sex encoding (accepted: {accepted})"
    return table[key], None


def read_labels(
    path: str | os.PathLike,
    *,
    strict: bool = False,
    require_age: bool | None = None,
    bad_rows: list[BadRow] | None = None,
) -> pd.DataFrame:
    """Read an RSNA label file (.csv or .xlsx) by header name and validate every row.

    Accepted headers (case-insensitive, whitespace-trimmed; any column order):
    id: ``id``, ``Image ID``, ``Case ID``; age (months): ``boneage``, ``Bone Age (months)``,
    ``Ground truth bone age (months)``; sex: ``male`` (True/False, TRUE/FALSE, true/false, 1/0)
    or ``Sex`` (M/F, male/female). Other columns are ignored.

    ``require_age``: True = an age column must exist (train/val), False = never required (ages
    become NaN when absent, e.g. ``boneage-test-dataset.csv``), None = required only when the
    file has unrecognised columns (a renamed age column).

    Returns a DataFrame with columns ``id`` (str of the integer id), ``boneage`` (float months,
    NaN when the file has no ages), ``male`` (bool), ``row`` (1-based data row in the file).
    ``df.attrs`` carries ``source`` (path), ``source_name``, ``fields`` (the header used for each
    field), ``num_rows`` and ``bad_rows``.

    Bad rows (non-integer id, age not a finite number in 0-240, unknown sex value, duplicate id:
    the later row) are dropped and appended to ``bad_rows`` (and ``attrs['bad_rows']``), or
    raise ``RSNAFormatError`` with ``strict=True``. A missing or unreadable file, a missing or
    ambiguous column raise in both modes (FileNotFoundError / RSNAFormatError).
    """
    path = Path(path)
    name = path.name
    header, rows = _read_table(path)
    cols = _match_columns(header, name, require_age)
    issues = _Issues(strict)
    id_idx, id_field = cols["id"]  # type: ignore[misc]
    age_col = cols["boneage"]
    sex_col = cols["male"] or cols["sex"]
    is_male_column = cols["male"] is not None
    assert sex_col is not None

    ids: list[str] = []
    ages: list[float] = []
    males: list[bool] = []
    row_numbers: list[int] = []
    first_row: dict[str, int] = {}
    for number, cells in rows:

        def cell(index: int, cells: list[str] = cells) -> str:
            return cells[index].strip() if index < len(cells) else ""

        problems: list[tuple[str, str]] = []
        rid, why = _parse_id(cell(id_idx))
        if why:
            problems.append((id_field, why))
        elif rid in first_row:
            problems.append((id_field, f"duplicate id {rid} (first at row {first_row[rid]})"))
        age = math.nan
        if age_col is not None:
            parsed, why = _parse_age(cell(age_col[0]))
            if why:
                problems.append((age_col[1], why))
            else:
                age = float(parsed)  # type: ignore[arg-type]
        male, why = parse_sex(cell(sex_col[0]), is_male_column)
        if why:
            problems.append((sex_col[1], why))
        if problems:
            for fieldname, reason in problems:
                issues.add(BadRow(name, number, fieldname, reason))
            continue
        assert rid is not None and male is not None
        first_row[rid] = number
        ids.append(rid)
        ages.append(age)
        males.append(male)
        row_numbers.append(number)

    df = pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=object),
            "boneage": pd.Series(ages, dtype=np.float64),
            "male": pd.Series(males, dtype=bool),
            "row": pd.Series(row_numbers, dtype=np.int64),
        }
    )
    if bad_rows is not None:
        bad_rows.extend(issues.items)
    df.attrs.update(
        {
            "source": os.fspath(path),
            "source_name": name,
            "fields": {
                "id": id_field,
                "boneage": age_col[1] if age_col else None,
                "male": sex_col[1],
            },
            "num_rows": len(rows),
            "bad_rows": list(issues.items),
        }
    )
    return df


# --- keypoint files ------------------------------------------------------------------------------


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


def _outside(kps: np.ndarray, width: int, height: int) -> tuple[int, float, float] | None:
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
    annotations: list = data["annotations"]
    images = {str(im.get("id")): im for im in data["images"] if isinstance(im, dict)}
    wholebody = any(
        isinstance(a, dict) and ("lefthand_kpts" in a or "righthand_kpts" in a) for a in annotations
    )
    k = _detect_num_keypoints(data, annotations, wholebody)
    if wholebody:
        fmt = FORMAT_WHOLEBODY21 if k == 21 else f"wholebody{k}"
    else:
        fmt = FORMAT_BONET17 if k == 17 else f"coco{k}"
    out = KeypointFile(os.fspath(path), name, fmt, k, default_landmark_names(k))
    issues = _Issues(strict, out.issues)

    def bad(row: int, fieldname: str, reason: str, action: str = ACTION_KEYPOINTS_IGNORED) -> None:
        issues.add(BadRow(name, row, fieldname, reason, action))

    for row, ann in enumerate(annotations, start=1):
        if not isinstance(ann, dict):
            bad(row, "-", "annotation is not an object")
            continue
        image = images.get(str(ann.get("image_id")))
        if image is None:
            bad(row, "image_id", f"image_id {ann.get('image_id')!r} is not in the json's images")
            continue
        file_name = image.get("file_name")
        stem = Path(str(file_name)).stem if file_name else ""
        rsna_id, why = _parse_id(stem)
        if why or rsna_id is None:
            bad(row, "file_name", f"file_name {file_name!r} is not '<RSNA id>.png'")
            continue
        size = None
        w, h = image.get("width"), image.get("height")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            size = (w, h)

        if wholebody:
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
                out.no_keypoints.setdefault(rsna_id, row)
                continue
            side = chosen[0]
            if len(chosen) == 2:
                bad(
                    row,
                    "lefthand_valid",
                    "both hands are valid; the left hand is used",
                    ACTION_NOTE,
                )
            kp_field, box_field = f"{side}hand_kpts", f"{side}hand_box"
            values = _as_float_list(ann.get(kp_field))
            box = _as_float_list(ann.get(box_field))
        else:
            side = None
            kp_field, box_field = "keypoints", "bbox"
            raw = ann.get("keypoints")
            if raw is None or raw == []:
                out.no_keypoints.setdefault(rsna_id, row)
                continue
            values = _as_float_list(raw)
            box = _as_float_list(ann.get("bbox"))

        if values is None or not all(math.isfinite(v) for v in values):
            bad(row, kp_field, "keypoints are not a list of finite numbers")
            continue
        if len(values) != 3 * k:
            bad(
                row,
                kp_field,
                f"wrong keypoint count: {len(values)} numbers ({len(values) / 3:g} points), "
                f"expected {3 * k} ({k} points)",
            )
            continue
        kps = np.asarray(values, dtype=np.float64).reshape(k, 3)
        if not np.isin(kps[:, 2], (0.0, 1.0, 2.0)).all():
            bad(row, kp_field, "visibility flags must be 0, 1 or 2")
            continue
        if ann.get(box_field) is not None and (
            box is None or len(box) != 4 or not all(math.isfinite(v) for v in box)
        ):
            bad(row, box_field, "box is not [x, y, w, h]")
            continue
        if not kps.any() or not (kps[:, 2] > 0).any():
            out.no_keypoints.setdefault(rsna_id, row)
            continue
        if box is not None and (box[2] <= 0 or box[3] <= 0):
            out.no_keypoints.setdefault(rsna_id, row)
            continue
        if size is not None:
            hit = _outside(kps, *size)
            if hit is not None:
                j, x, y = hit
                bad(
                    row,
                    kp_field,
                    f"keypoint {j} (x={x:g}, y={y:g}) is outside the {size[0]}x{size[1]} image",
                )
                continue
        if rsna_id in out.hands:
            first = out.hands[rsna_id].row
            bad(
                row,
                kp_field,
                f"second hand with keypoints for image {rsna_id} (first: row {first})",
            )
            continue
        out.hands[rsna_id] = HandKeypoints(rsna_id, row, kps, box, size, side)
    for rsna_id in out.hands:
        out.no_keypoints.pop(rsna_id, None)
    if bad_rows is not None:
        bad_rows.extend(out.issues)
    return out


# --- geometry ------------------------------------------------------------------------------------


def _r(value: float) -> float:
    return round(float(value), COORD_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def roi_box(
    x: float,
    y: float,
    width: int,
    height: int,
    roi_size_px: float = DEFAULT_ROI_SIZE_PX,
    roi_reference_long_side: float = DEFAULT_ROI_REFERENCE_LONG_SIDE,
) -> list[float] | None:
    """Square ROI box ``[x, y, w, h]`` around a keypoint given in COCO convention (pixel index).

    The box is centred at the continuous position ``(x + 0.5, y + 0.5)``, its side is
    ``roi_size_px * max(width, height) / roi_reference_long_side`` (64 px at a 512-px long side
    by default, in original-image pixels), and it is clipped to ``[0, width] x [0, height]``.
    Returns None when nothing of the box is inside the image.
    """
    side = roi_size_px * max(width, height) / roi_reference_long_side
    cx, cy = x + 0.5, y + 0.5
    x0, y0 = max(0.0, cx - side / 2), max(0.0, cy - side / 2)
    x1, y1 = min(float(width), cx + side / 2), min(float(height), cy + side / 2)
    if x1 <= x0 or y1 <= y0:
        return None
    return [_r(x0), _r(y0), _r(x1 - x0), _r(y1 - y0)]


def _roi_boxes(
    kps: np.ndarray, width: int, height: int, roi_size_px: float, roi_reference_long_side: float
) -> list[tuple[int, list[float]]]:
    """``(landmark index, box)`` for every visible keypoint; vectorised :func:`roi_box`."""
    index = np.flatnonzero(kps[:, 2] > 0)
    if len(index) == 0:
        return []
    half = roi_size_px * max(width, height) / roi_reference_long_side / 2
    centre = kps[index, :2] + 0.5
    lo = np.maximum(centre - half, 0.0)
    hi = np.minimum(centre + half, np.array([float(width), float(height)]))
    boxes = np.round(np.concatenate([lo, hi - lo], axis=1), COORD_DECIMALS) + 0.0
    keep = (hi > lo).all(axis=1)
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
        hit = _outside(hand.keypoints, width, height)
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
                    "category_id": 1,
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
                    "category_id": 2,
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
                "category_id": 1,
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


def _package_version() -> str:
    try:
        from boneage_d2 import __version__  # type: ignore[attr-defined]

        return str(__version__)
    except ImportError:
        pass
    try:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("boneage_d2")
        except PackageNotFoundError:
            return "0+unknown"
    except ImportError:  # pragma: no cover
        return "0+unknown"


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
    roi_size_px: float = DEFAULT_ROI_SIZE_PX,
    roi_reference_long_side: float = DEFAULT_ROI_REFERENCE_LONG_SIDE,
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
    instead (:func:`boneage_d2.data.hand_masks.derive_hand_mask`; excludes ``mask_dir``).
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
    issues = _Issues(strict)

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
        mask_source = "derived (boneage_d2.data.hand_masks)"
    elif mask_dir is not None:
        mask_source = f"folder {mask_folder}"
    else:
        mask_source = "none"
    coco = {
        "info": {
            "description": "RSNA Pediatric Bone Age, converted by boneage_d2.data.rsna",
            "version": _package_version(),
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
        "categories": [
            {
                "id": 1,
                "name": "hand",
                "supercategory": "hand",
                "keypoints": list(names),
                "skeleton": [],
            },
            {"id": 2, "name": "anatomical_roi", "supercategory": "hand"},
        ],
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
