"""Bone-age SDS against the reference SD table, and the --age-csv reader."""

import pytest
import torch

from boneage_d2.engine.prediction_io import InputError, ages_for_files, prediction_record
from boneage_d2.reference import SDTable, bone_age_sds
from boneage_d2.reference.sds import SDTableError

TABLE = SDTable.load()


def test_sds_matches_a_hand_computed_value():
    # a boy of 10 years (120 months) with a bone age of 100 months: the table's SD at 10 years
    # is 9.79 months, so SDS = (100 - 120) / 9.79 = -2.043
    res = bone_age_sds(100.0, 120.0, True, TABLE)
    assert res.delay_months == -20.0
    assert res.reference_sd_months == pytest.approx(9.79)
    assert res.sds == pytest.approx(-2.0429, abs=1e-4)
    # a girl of 6 years with a bone age of 84 months: (84 - 72) / 11.65 = 1.030
    assert bone_age_sds(84.0, 72.0, False, TABLE).sds == pytest.approx(1.0300, abs=1e-4)


def test_sd_is_interpolated_and_held_beyond_the_table():
    assert TABLE.sd_months(66.0, True) == pytest.approx((8.79 + 9.17) / 2)
    assert TABLE.sd_months(0.0, True) == pytest.approx(0.72)  # before the first age
    assert TABLE.sd_months(240.0, False) == pytest.approx(7.31)  # after the last
    with pytest.raises(ValueError, match="non-negative"):
        bone_age_sds(100.0, -1.0, True, TABLE)


def test_bad_tables_name_file_row_and_field(tmp_path):
    bad = tmp_path / "sd.csv"
    bad.write_text("sex,age_months,sd_months\nM,12,2\nX,24,3\n")
    with pytest.raises(SDTableError, match=r"sd.csv, row 3, field 'sex'"):
        SDTable.load(bad)
    bad.write_text("sex,age_months,sd_months\nM,12,0\n")
    with pytest.raises(SDTableError, match=r"row 2, field 'sd_months'"):
        SDTable.load(bad)
    bad.write_text("sex,age\nM,12\n")
    with pytest.raises(SDTableError, match="needs"):
        SDTable.load(bad)
    bad.write_text("sex,age_months,sd_months\nM,24,2\nM,12,3\nF,12,2\n")
    with pytest.raises(SDTableError, match="not increasing"):
        SDTable.load(bad)


def test_prediction_record_reports_delay_sds_and_the_flag():
    inp = {"file_name": "a.png", "male": True}
    rec = prediction_record(inp, {"boneage": torch.tensor(100.0)}, age_months=120.0, sd_table=TABLE)
    assert rec["chronological_age_months"] == 120.0 and rec["boneage_delay_months"] == -20.0
    assert rec["boneage_sds"] == -2.04 and rec["flags"] == ["sds_beyond_2"]
    assert "2 SD" in rec["flag_reasons"][0]
    rec = prediction_record(inp, {"boneage": torch.tensor(118.0)}, age_months=120.0, sd_table=TABLE)
    assert rec["flags"] == [] and "boneage_sds" in rec
    assert "boneage_sds" not in prediction_record(inp, {"boneage": torch.tensor(1.0)})


def test_age_csv_matches_files_and_reports_bad_cells(tmp_path):
    ages = tmp_path / "ages.csv"
    ages.write_text("file,age_years\nscans/a.png,10\nb,\nc.png,7.5\n")
    got = ages_for_files(["x/a.png", "x/b.png", "x/c.png", "x/d.png"], None, str(ages))
    assert got == [120.0, None, 90.0, None]  # an empty cell or a missing file: no SDS
    assert ages_for_files(["a.png"], 30.0, None) == [30.0]
    assert ages_for_files(["a.png"], None, None) == [None]
    ages.write_text("file,age_months\na.png,ten\n")
    with pytest.raises(InputError, match=r"ages.csv, row 2, field 'age_months': 'ten' is not"):
        ages_for_files(["a.png"], None, str(ages))
    ages.write_text("file,months\na.png,10\n")
    with pytest.raises(InputError, match="needs a file column"):
        ages_for_files(["a.png"], None, str(ages))
