"""Bone-age SDS: how far a bone age lies from the chronological age, in reference SDs.

``delay = bone age - chronological age`` (months; negative: delayed) and
``SDS = delay / SD(chronological age, sex)``, the SD linearly interpolated between the table's
ages and held at its first / last value outside them. The default table is the Greulich & Pyle
atlas's standard deviations of skeletal age (Brush Foundation sample); ``docs/sds.md`` gives its
source and limits. Any table in the same CSV form (``sex,age_months,sd_months``) can be used.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_SD_TABLE", "SDSResult", "SDTable", "bone_age_sds"]

DEFAULT_SD_TABLE = Path(__file__).with_name("greulich_pyle_sd.csv")


class SDTableError(ValueError):
    """A malformed reference table; the message names the file, row and field."""


@dataclass(frozen=True)
class SDTable:
    """Reference SD of bone age (months) by chronological age (months) and sex."""

    ages: dict[bool, np.ndarray]  # male -> increasing ages
    sds: dict[bool, np.ndarray]  # male -> SDs at those ages
    source: str

    @classmethod
    def load(cls, path: str | os.PathLike = DEFAULT_SD_TABLE) -> SDTable:
        """Read ``sex,age_months,sd_months`` rows (sex M/F; each sex's ages increasing)."""
        rows: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                need = {"sex", "age_months", "sd_months"}
                if not need <= set(reader.fieldnames or ()):
                    raise SDTableError(f"{path}: header {reader.fieldnames} needs {sorted(need)}")
                for row_no, row in enumerate(reader, start=2):
                    sex = (row["sex"] or "").strip().upper()
                    if sex not in ("M", "F"):
                        raise SDTableError(f"{path}, row {row_no}, field 'sex': {sex!r} not M/F")
                    vals = []
                    for field in ("age_months", "sd_months"):
                        try:
                            v = float(row[field])
                        except (TypeError, ValueError):
                            v = math.nan
                        if not math.isfinite(v) or v < 0 or (field == "sd_months" and v == 0):
                            raise SDTableError(
                                f"{path}, row {row_no}, field {field!r}: {row[field]!r} is not "
                                "a positive number"
                            )
                        vals.append(v)
                    rows[sex == "M"].append((vals[0], vals[1]))
        except OSError as e:
            raise SDTableError(f"{path}: cannot read ({e.strerror or e})") from e
        ages, sds = {}, {}
        for male, pairs in rows.items():
            if not pairs:
                raise SDTableError(f"{path}: no rows for sex {'M' if male else 'F'}")
            a = np.array([p[0] for p in pairs])
            if np.any(np.diff(a) <= 0):
                raise SDTableError(f"{path}: ages of sex {'M' if male else 'F'} not increasing")
            ages[male], sds[male] = a, np.array([p[1] for p in pairs])
        return cls(ages, sds, str(path))

    def sd_months(self, age_months: float, male: bool) -> float:
        """The reference SD at a chronological age (interpolated; held beyond the table)."""
        return float(np.interp(age_months, self.ages[male], self.sds[male]))


@dataclass(frozen=True)
class SDSResult:
    delay_months: float  # bone age - chronological age
    sds: float  # delay / reference SD
    reference_sd_months: float


def bone_age_sds(boneage_months: float, age_months: float, male: bool, table: SDTable) -> SDSResult:
    """Delay and SDS of one bone age at a chronological age (``ValueError`` for a negative or
    non-finite age)."""
    if not (math.isfinite(age_months) and age_months >= 0):
        raise ValueError(f"chronological age must be a non-negative number, got {age_months}")
    sd = table.sd_months(age_months, male)
    delay = float(boneage_months) - float(age_months)
    return SDSResult(delay, delay / sd, sd)
