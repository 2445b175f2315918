"""A fixed, stratified train/val split of one RSNA label file (e.g. a subset with one CSV).

Strata are (age band, sex), so both splits keep the label file's age and sex mix; the split is a
function of the file and the seed only. Each output is a label file with the input's own header
and rows (bad rows are left out and reported), so the converter reads it as it reads the input.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_open
from .input_problems import BadRow
from .label_files import read_labels
from .label_tables import read_table

__all__ = ["AGE_BANDS_MONTHS", "LabelSplit", "split_label_file", "stratified_split"]

# The evaluator's default age bands (months): 0-2, 2-5, 5-10, 10-15, 15-20 years.
AGE_BANDS_MONTHS = (0.0, 24.0, 60.0, 120.0, 180.0, 240.0)


def stratified_split(
    ages: Sequence[float],
    males: Sequence[bool],
    val_fraction: float,
    seed: int,
    bands: Sequence[float] = AGE_BANDS_MONTHS,
) -> np.ndarray:
    """[N] bool, True for the validation rows: ``round(n * val_fraction)`` of each (age band,
    sex) stratum of ``n`` rows, drawn with ``seed`` (strata in sorted order, one generator)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    ages = np.asarray(ages, dtype=np.float64)
    band = np.clip(np.searchsorted(np.asarray(bands), ages, side="right") - 1, 0, len(bands) - 2)
    strata = band * 2 + np.asarray(males, dtype=np.int64)
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(ages), dtype=bool)
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        take = int(round(len(members) * val_fraction))
        is_val[rng.permutation(members)[:take]] = True
    return is_val


@dataclass
class LabelSplit:
    """What :func:`split_label_file` wrote: the two files and their row counts by stratum."""

    train_csv: str
    val_csv: str
    num_train: int
    num_val: int
    bad_rows: list[BadRow] = field(default_factory=list)

    def summary(self) -> str:
        skipped = f", {len(self.bad_rows)} bad rows left out" if self.bad_rows else ""
        return (
            f"split: {self.num_train} train rows -> {self.train_csv}, {self.num_val} val rows -> "
            f"{self.val_csv}{skipped}"
        )


def split_label_file(
    labels: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    bands: Sequence[float] = AGE_BANDS_MONTHS,
) -> LabelSplit:
    """Split ``labels`` into ``<output_dir>/train.csv`` and ``val.csv`` (stratified by age band
    and sex, :func:`stratified_split`), written atomically with the input's header."""
    bad: list[BadRow] = []
    df = read_labels(labels, require_age=True, bad_rows=bad)
    if len(df) < 2:
        raise ValueError(f"{labels}: {len(df)} valid row(s); a split needs at least 2")
    is_val = stratified_split(df["boneage"], df["male"], val_fraction, seed, bands)
    header, rows = read_table(Path(labels))
    cells = dict(rows)
    out = Path(output_dir)
    paths = {}
    for name, chosen in (("train", ~is_val), ("val", is_val)):
        paths[name] = out / f"{name}.csv"
        with atomic_open(paths[name], "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            for row_no in df["row"][chosen]:
                writer.writerow(cells[int(row_no)])
    return LabelSplit(
        os.fspath(paths["train"]),
        os.fspath(paths["val"]),
        int((~is_val).sum()),
        int(is_val.sum()),
        bad,
    )
