"""Batch prediction's files: which images to read, each one's sex, and the CSV/JSON written.

``tools/predict.py`` is a thin CLI over these and :class:`BoneAgePredictor`.
"""

from __future__ import annotations

import csv
import glob
import math
import os
from pathlib import Path

from ..convert.label_files import MALE_HEADERS, SEX_HEADERS, column_index, parse_sex
from ..io.atomic import atomic_open, atomic_write_json

__all__ = [
    "CSV_COLUMNS",
    "IMAGE_SUFFIXES",
    "InputError",
    "collect_inputs",
    "output_names",
    "prediction_record",
    "read_sex_csv",
    "sex_for_files",
    "write_prediction_tables",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
CSV_COLUMNS = (
    "file",
    "sex",
    "boneage_months",
    "boneage_years",
    "num_hands",
    "hand_ages_months",
    "num_rois",
    "roi_ages_months",
    "flags",
    "error",
)
FILE_HEADERS = ("file", "filename", "file_name", "id", "image id", "case id")


def _first_column(header: list[str], names: tuple[str, ...]) -> int | None:
    """The column of the first of ``names`` (in their order of preference) in ``header``."""
    return next((i for n in names if (i := column_index(header, [n])) is not None), None)


class InputError(ValueError):
    """Bad command-line input; the message says what and where."""


def collect_inputs(patterns: list[str]) -> list[str]:
    """Image files from files, folders (recursive) and glob patterns: sorted, de-duplicated."""
    files: list[str] = []
    for pat in patterns:
        if os.path.isdir(pat):
            files += [
                str(p)
                for p in sorted(Path(pat).rglob("*"))
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            ]
        elif os.path.isfile(pat):
            files.append(pat)
        else:
            matched = sorted(glob.glob(pat, recursive=True))
            if not matched:
                raise InputError(f"--input {pat}: no such file or folder, and no glob match")
            files += [m for m in matched if os.path.isfile(m)]
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]
    if not unique:
        raise InputError(f"--input {' '.join(patterns)}: no images ({'/'.join(IMAGE_SUFFIXES)})")
    return unique


def read_sex_csv(path: str) -> dict[str, bool]:
    """``{name: male}`` from a CSV with a file column and a ``sex`` or ``male`` column; keys are
    the value as written, its base name and its stem, so any of them matches an input file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError(f"--sex-csv {path}: cannot read ({e.strerror or e})") from e
    if not rows:
        raise InputError(f"--sex-csv {path}: empty file")
    header = rows[0]
    file_col = _first_column(header, FILE_HEADERS)
    sex_col = _first_column(header, SEX_HEADERS + MALE_HEADERS)
    if file_col is None or sex_col is None:
        raise InputError(
            f"--sex-csv {path}: header {rows[0]} needs a file column ({'/'.join(FILE_HEADERS)}) "
            "and a 'sex' (M/F) or 'male' (True/False) column"
        )
    table: dict[str, bool] = {}
    for row_no, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(file_col, sex_col):
            raise InputError(f"--sex-csv {path}, row {row_no}: too few columns")
        male, err = parse_sex(row[sex_col], column_index([header[sex_col]], MALE_HEADERS) == 0)
        if err:
            raise InputError(f"--sex-csv {path}, row {row_no}, field {rows[0][sex_col]!r}: {err}")
        name = row[file_col].strip()
        for key in {name, os.path.basename(name), Path(name).stem}:
            table[key] = male
    return table


def sex_for_files(files: list[str], sex: str | None, sex_csv: str | None) -> list[bool]:
    """The sex of every file, from ``--sex`` or ``--sex-csv``; an error lists files without one."""
    if sex is not None:
        return [sex.upper() == "M"] * len(files)
    table = read_sex_csv(sex_csv)
    males, missing = [], []
    for f in files:
        key = next((k for k in (f, os.path.basename(f), Path(f).stem) if k in table), None)
        if key is None:
            missing.append(f)
        males.append(table.get(key, False))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(
            f"--sex-csv {sex_csv}: no sex for {len(missing)} input file(s): "
            f"{', '.join(missing[:5])}{more}"
        )
    return males


def output_names(files: list[str]) -> list[str]:
    """A unique PNG name per input: its stem, or its path with separators replaced on clashes."""
    stems = [Path(f).stem for f in files]
    clashes = {s for s in stems if stems.count(s) > 1}
    return [
        (str(Path(f).with_suffix("")).strip("/").replace(os.sep, "__") if s in clashes else s)
        + ".png"
        for f, s in zip(files, stems)
    ]


def write_prediction_tables(out_dir: Path, records: list[dict], meta: dict) -> None:
    """``predictions.csv`` (lists joined by ';') and ``predictions.json`` (which alone carries
    ALA-Net's per-ROI boxes and scores), both atomically."""
    with atomic_open(out_dir / "predictions.csv", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for rec in records:
            row = {k: rec.get(k, "") for k in CSV_COLUMNS}
            for k, v in row.items():
                if isinstance(v, list):
                    row[k] = ";".join("" if x is None else str(x) for x in v)
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    atomic_write_json(out_dir / "predictions.json", {**meta, "predictions": records}, indent=1)


def _months(value) -> float | None:
    v = float(value)
    return round(v, 2) if math.isfinite(v) else None


def _instance_months(inst, field: str) -> list[float | None]:
    """Per-instance ages of ``inst.<field>`` as :func:`_months` (all None without the field)."""
    if not inst.has(field):
        return [None] * len(inst)
    return [_months(a) for a in inst.get(field).tolist()]


def prediction_record(inp: dict, output: dict | None) -> dict:
    """One image's prediction as plain data (the rows of predict.py's CSV and JSON).

    Keys: ``file``, ``sex`` (M/F), ``boneage_months``, ``boneage_years``; for Model A
    ``num_hands`` and ``hand_ages_months`` (the hands that passed the score threshold and got an
    age, best score first; detections below it are not hands here);
    for ALA-Net ``num_rois``, ``roi_ages_months`` (each ROI's own age from the patch head, by
    objectness) and ``rois`` (``box_xyxy`` in original pixels, ``score``, ``age_months``);
    ``flags`` (e.g. ``no_hand_found``, ``unreadable``) and ``error``.
    """
    rec: dict = {
        "file": os.fspath(inp["file_name"]),
        "sex": "M" if inp["male"] else "F",
        "boneage_months": None,
        "boneage_years": None,
        "flags": list(output.get("flags", [])) if output else ["unreadable"],
        "error": inp.get("error", ""),
    }
    if output is None:
        return rec
    if "boneage" in output:
        months = _months(output["boneage"])
        rec["boneage_months"] = months
        rec["boneage_years"] = None if months is None else round(months / 12.0, 2)
    inst = output.get("instances")
    if inst is not None and inst.has("pred_masks"):  # hands (Model A): the assessed ones
        ages = [a for a in _instance_months(inst, "boneage") if a is not None]
        rec["num_hands"] = len(ages)
        rec["hand_ages_months"] = ages
    elif inst is not None:  # anatomical ROI boxes (ALA-Net), by objectness
        rec["num_rois"] = len(inst)
        rec["roi_ages_months"] = _instance_months(inst, "patch_boneage")
        rec["rois"] = [
            {"box_xyxy": [round(v, 1) for v in box], "score": round(score, 4), "age_months": age}
            for box, score, age in zip(
                inst.pred_boxes.tensor.tolist(), inst.scores.tolist(), rec["roi_ages_months"]
            )
        ]
    return rec
