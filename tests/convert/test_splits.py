"""tools/split_labels.py: a fixed, stratified train/val split that the converter reads."""

import csv

import numpy as np
import pytest

from boneage_d2.convert import read_labels
from boneage_d2.convert.splits import AGE_BANDS_MONTHS, split_label_file, stratified_split
from tests.cli import load_tool


def _labels(path, n=200, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(1000 + i, int(rng.uniform(1, 228)), bool(rng.integers(0, 2))) for i in range(n)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Image ID", "male", "Bone Age (months)"])  # the validation file's header
        for rid, age, male in rows:
            w.writerow([rid, "TRUE" if male else "FALSE", age])
    return rows


def test_every_stratum_is_split_in_proportion_and_deterministically():
    rng = np.random.default_rng(1)
    ages, males = rng.uniform(0, 228, 500), rng.integers(0, 2, 500).astype(bool)
    is_val = stratified_split(ages, males, 0.2, seed=3)
    assert np.array_equal(is_val, stratified_split(ages, males, 0.2, seed=3))
    assert not np.array_equal(is_val, stratified_split(ages, males, 0.2, seed=4))
    band = np.searchsorted(AGE_BANDS_MONTHS, ages, side="right") - 1
    for b in range(len(AGE_BANDS_MONTHS) - 1):
        for m in (False, True):
            members = (band == b) & (males == m)
            assert is_val[members].sum() == round(members.sum() * 0.2)


def test_split_files_keep_the_header_and_every_row_once(tmp_path):
    rows = _labels(tmp_path / "labels.csv")
    split = split_label_file(tmp_path / "labels.csv", tmp_path / "out", val_fraction=0.25, seed=0)
    train, val = read_labels(split.train_csv), read_labels(split.val_csv)
    assert split.num_train == len(train) and split.num_val == len(val)
    assert (
        split.num_train + split.num_val == 200 and abs(split.num_val - 50) <= 5
    )  # per-stratum rounding
    assert sorted(list(train["id"]) + list(val["id"])) == sorted(str(r[0]) for r in rows)
    with open(split.val_csv) as f:
        assert next(csv.reader(f)) == ["Image ID", "male", "Bone Age (months)"]
    truth = {str(r[0]): (float(r[1]), r[2]) for r in rows}
    for _, r in val.iterrows():
        assert truth[r["id"]] == (r["boneage"], r["male"])


def test_cli_splits_and_rejects_bad_input(tmp_path, capsys):
    tool = load_tool("split_labels")
    _labels(tmp_path / "labels.csv", n=40)
    assert tool.main(["--labels", str(tmp_path / "labels.csv"), "--output-dir", str(tmp_path)]) == 0
    assert "32 train rows" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        tool.main(["--labels", str(tmp_path / "missing.csv"), "--output-dir", str(tmp_path)])
    assert e.value.code == 2 and "missing.csv: file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(
            ["--labels", str(tmp_path / "labels.csv"), "--output-dir", "x", "--val-fraction", "1"]
        )
    assert "expected a fraction in (0, 1)" in capsys.readouterr().err
