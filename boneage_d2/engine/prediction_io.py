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
from ..reference import SDTable, bone_age_sds
from ..schema import FLAG_REASONS, INPUT_PROBLEM_FLAGS, SDS_FLAG

__all__ = [
    "CSV_COLUMNS",
    "IMAGE_SUFFIXES",
    "InputError",
    "ages_for_files",
    "collect_inputs",
    "output_names",
    "prediction_record",
    "read_age_csv",
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
    "boneage_lo_months",
    "boneage_hi_months",
    "boneage_rank_lo_months",
    "boneage_rank_hi_months",
    "chronological_age_months",
    "boneage_delay_months",
    "boneage_sds",
    "num_hands",
    "hand_ages_months",
    "num_rois",
    "roi_ages_months",
    "flags",
    "flag_reasons",
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


def _read_file_table(path: str, option: str, value_headers: tuple[str, ...], what: str, parse):
    """``{name: value}`` from a CSV with a file column and a value column (the first of
    ``value_headers``); ``parse(cell, header) -> (value, error)``. Keys are the name as written,
    its base name and its stem, so any of them matches an input file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError(f"{option} {path}: cannot read ({e.strerror or e})") from e
    if not rows:
        raise InputError(f"{option} {path}: empty file")
    header = rows[0]
    file_col = _first_column(header, FILE_HEADERS)
    value_col = _first_column(header, value_headers)
    if file_col is None or value_col is None:
        raise InputError(
            f"{option} {path}: header {rows[0]} needs a file column ({'/'.join(FILE_HEADERS)}) "
            f"and {what}"
        )
    table: dict = {}
    for row_no, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(file_col, value_col):
            raise InputError(f"{option} {path}, row {row_no}: too few columns")
        value, err = parse(row[value_col], header[value_col])
        if err:
            raise InputError(f"{option} {path}, row {row_no}, field {header[value_col]!r}: {err}")
        name = row[file_col].strip()
        for key in {name, os.path.basename(name), Path(name).stem}:
            table[key] = value
    return table


def _lookup(table: dict, f: str):
    return next((table[k] for k in (f, os.path.basename(f), Path(f).stem) if k in table), None)


def read_sex_csv(path: str) -> dict[str, bool]:
    """``{name: male}`` from a CSV with a file column and a ``sex`` or ``male`` column."""

    def parse(cell: str, head: str):
        return parse_sex(cell, column_index([head], MALE_HEADERS) == 0)

    what = "a 'sex' (M/F) or 'male' (True/False) column"
    return _read_file_table(path, "--sex-csv", SEX_HEADERS + MALE_HEADERS, what, parse)


AGE_MONTH_HEADERS = ("age_months", "chronological_age_months", "ca_months")
AGE_YEAR_HEADERS = ("age_years", "chronological_age_years", "ca_years")


def read_age_csv(path: str) -> dict[str, float]:
    """``{name: chronological age in months}`` from a CSV with a file column and an age column
    (``age_months`` or ``age_years``; an empty cell: no age for that file)."""

    def parse(cell: str, head: str):
        if not cell.strip():
            return None, None
        try:
            v = float(cell)
        except ValueError:
            return None, f"{cell!r} is not a number"
        if not math.isfinite(v) or v < 0:
            return None, f"{cell!r} is not a non-negative age"
        return (v * 12.0 if column_index([head], AGE_YEAR_HEADERS) == 0 else v), None

    what = f"an age column ({'/'.join(AGE_MONTH_HEADERS + AGE_YEAR_HEADERS)})"
    return _read_file_table(path, "--age-csv", AGE_MONTH_HEADERS + AGE_YEAR_HEADERS, what, parse)


def ages_for_files(files: list[str], age: float | None, age_csv: str | None) -> list:
    """The chronological age (months) of every file from ``--age`` or ``--age-csv``; None for
    a file without one (it gets no SDS), None for all without either option."""
    if age is not None:
        return [float(age)] * len(files)
    if age_csv is None:
        return [None] * len(files)
    table = read_age_csv(age_csv)
    return [_lookup(table, f) for f in files]


def sex_for_files(files: list[str], sex: str | None, sex_csv: str | None) -> list[bool]:
    """The sex of every file, from ``--sex`` or ``--sex-csv``; an error lists files without one."""
    if sex is not None:
        return [sex.upper() == "M"] * len(files)
    table = read_sex_csv(sex_csv)
    males, missing = [], []
    for f in files:
        male = _lookup(table, f)
        if male is None:
            missing.append(f)
        males.append(bool(male))
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


def prediction_record(
    inp: dict,
    output: dict | None,
    reject_flagged: bool = False,
    age_months: float | None = None,
    sd_table: SDTable | None = None,
) -> dict:
    """One image's prediction as plain data (the rows of predict.py's CSV and JSON).

    Keys: ``file``, ``sex`` (M/F), ``boneage_months``, ``boneage_years``; with a calibration
    ``boneage_lo_months`` / ``boneage_hi_months`` (the conformal interval); from an ordinal head
    ``boneage_rank_lo_months`` / ``boneage_rank_hi_months`` (its rank probabilities'); for Model A
    ``num_hands`` and ``hand_ages_months`` (the hands that passed the score threshold and got an
    age, best score first; detections below it are not hands here);
    for ALA-Net ``num_rois``, ``roi_ages_months`` (each ROI's own age from the patch head, by
    objectness) and ``rois`` (``box_xyxy`` in original pixels, ``score``, ``age_months``);
    ``member_ages_months`` for an ensemble (each member's age);
    ``flags`` (e.g. ``no_hand_found``, ``unreadable``), ``flag_reasons`` (one short reason per
    flag) and ``error``. ``reject_flagged``: an image with any of ``INPUT_PROBLEM_FLAGS`` (not a
    readable hand film) gets no ages, only its flags. With ``age_months`` (chronological) and
    ``sd_table``: ``chronological_age_months``, ``boneage_delay_months`` (bone age minus age),
    ``boneage_sds`` (delay in reference SDs) and the ``sds_beyond_2`` flag when ``|SDS| > 2``.
    """
    rec: dict = {
        "file": os.fspath(inp["file_name"]),
        "sex": "M" if inp["male"] else "F",
        "boneage_months": None,
        "boneage_years": None,
        "flags": list(output.get("flags", [])) if output else ["unreadable"],
        "error": inp.get("error", ""),
    }
    rec["flag_reasons"] = [FLAG_REASONS.get(f, f) for f in rec["flags"]]
    if output is None or (reject_flagged and set(rec["flags"]) & set(INPUT_PROBLEM_FLAGS)):
        return rec
    if "boneage" in output:
        months = _months(output["boneage"])
        rec["boneage_months"] = months
        rec["boneage_years"] = None if months is None else round(months / 12.0, 2)
    for key in ("boneage_lo", "boneage_hi", "boneage_rank_lo", "boneage_rank_hi"):
        if key in output:
            rec[f"{key}_months"] = _months(output[key])
    if "member_ages" in output:  # an ensemble's members, in --ensemble order
        rec["member_ages_months"] = [round(float(a), 2) for a in output["member_ages"]]
    if age_months is not None and rec["boneage_months"] is not None and sd_table is not None:
        res = bone_age_sds(rec["boneage_months"], age_months, inp["male"], sd_table)
        rec["chronological_age_months"] = round(float(age_months), 2)
        rec["boneage_delay_months"] = round(res.delay_months, 2)
        rec["boneage_sds"] = round(res.sds, 2)
        if abs(res.sds) > 2.0:
            rec["flags"].append(SDS_FLAG)
            rec["flag_reasons"].append(FLAG_REASONS[SDS_FLAG])
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
