"""RSNA label files (.csv or .xlsx, as published): read by header name, every row validated."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .input_problems import BadRow, ProblemLog, RSNAFormatError
from .label_tables import read_table

__all__ = [
    "AGE_HEADERS",
    "ID_HEADERS",
    "MALE_HEADERS",
    "MAX_AGE_MONTHS",
    "SEX_HEADERS",
    "column_index",
    "parse_id",
    "parse_sex",
    "read_labels",
]

MAX_AGE_MONTHS = 240.0  # RSNA ages run 1-228 months; anything above 20 years is an input error

# Accepted label headers, compared case-insensitively after trimming and collapsing whitespace.
ID_HEADERS = ("id", "Image ID", "Case ID")
AGE_HEADERS = ("boneage", "Bone Age (months)", "Ground truth bone age (months)")
MALE_HEADERS = ("male",)
SEX_HEADERS = ("Sex",)
_MALE_VALUES = {"true": True, "false": False, "1": True, "0": False}
_SEX_VALUES = {"m": True, "male": True, "f": False, "female": False}


def _norm_header(text: Any) -> str:
    return " ".join(str(text).replace("\ufeff", "").strip().lower().split())


def column_index(header: Sequence[Any], accepted: Sequence[str]) -> int | None:
    """Index of the first header cell that is one of ``accepted`` (compared as the label
    readers compare: case-insensitive, whitespace trimmed and collapsed, BOM dropped)."""
    wanted = {_norm_header(n) for n in accepted}
    return next((i for i, text in enumerate(header) if _norm_header(text) in wanted), None)


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


def parse_id(text: str) -> tuple[str | None, str | None]:
    """An RSNA id cell (or file stem) -> ``(id as a str of the integer, None)``, or
    ``(None, reason)``; ``"1377"``, ``"1377.0"`` and ``"+1377"`` all give ``"1377"``."""
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


@dataclass
class _ValidRows:
    """The valid rows of a label file, column by column, and the headers used for id and sex."""

    id_field: str
    sex_field: str
    ids: list[str] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)
    males: list[bool] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


def _validate_rows(
    rows: list[tuple[int, list[str]]],
    cols: dict[str, tuple[int, str] | None],
    name: str,
    issues: ProblemLog,
) -> _ValidRows:
    """Parse every data row; a row with any problem (all of them added to ``issues``) is left
    out, as is a repeated id (the later row)."""
    id_idx, id_field = cols["id"]  # type: ignore[misc]
    age_col = cols["boneage"]
    sex_col = cols["male"] or cols["sex"]
    is_male_column = cols["male"] is not None
    assert sex_col is not None
    valid = _ValidRows(id_field, sex_col[1])
    first_row: dict[str, int] = {}
    for number, cells in rows:

        def cell(index: int, cells: list[str] = cells) -> str:
            return cells[index].strip() if index < len(cells) else ""

        problems: list[tuple[str, str]] = []
        rid, why = parse_id(cell(id_idx))
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
        valid.ids.append(rid)
        valid.ages.append(age)
        valid.males.append(male)
        valid.rows.append(number)
    return valid


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
    header, rows = read_table(path)
    cols = _match_columns(header, name, require_age)
    issues = ProblemLog(strict)
    valid = _validate_rows(rows, cols, name, issues)
    df = pd.DataFrame(
        {
            "id": pd.Series(valid.ids, dtype=object),
            "boneage": pd.Series(valid.ages, dtype=np.float64),
            "male": pd.Series(valid.males, dtype=bool),
            "row": pd.Series(valid.rows, dtype=np.int64),
        }
    )
    if bad_rows is not None:
        bad_rows.extend(issues.items)
    age_col = cols["boneage"]
    df.attrs.update(
        {
            "source": os.fspath(path),
            "source_name": name,
            "fields": {
                "id": valid.id_field,
                "boneage": age_col[1] if age_col else None,
                "male": valid.sex_field,
            },
            "num_rows": len(rows),
            "bad_rows": list(issues.items),
        }
    )
    return df
