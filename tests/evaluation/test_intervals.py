"""Split-conformal intervals: nominal coverage on held-out data, sidecar round trip, errors."""

import json

import numpy as np
import pytest
import torch

from boneage_d2.evaluation.intervals import (
    IntervalCalibrationError,
    apply_calibration,
    calibrate_intervals,
    conformal_quantile,
    interval_metrics,
    load_calibration,
    sidecar_path,
    write_calibration,
)
from boneage_d2.modeling.ordinal import rank_interval_months


def _split(seed: int, n: int, hetero: bool = False):
    """True ages and predictions whose errors grow with age when ``hetero``."""
    rng = np.random.default_rng(seed)
    true = rng.uniform(0, 228, n)
    scale = 4.0 + (0.08 * true if hetero else 8.0)
    return true + rng.laplace(0.0, scale), true


def test_conformal_quantile_is_the_finite_sample_rank():
    res = np.arange(1, 11, dtype=float)  # 10 residuals
    assert conformal_quantile(res, 0.95) == np.inf  # rank ceil(11 * 0.95) = 11 > 10
    assert conformal_quantile(res, 0.9) == 10.0  # rank ceil(9.9) = 10
    assert conformal_quantile(res, 0.8) == 9.0  # rank ceil(8.8) = 9
    assert conformal_quantile(res[::-1], 0.5) == 6.0  # order does not matter
    with pytest.raises(ValueError, match="coverage must be in"):
        conformal_quantile(res, 1.0)


@pytest.mark.parametrize("method", ["global", "band"])
def test_coverage_on_a_held_out_split_is_nominal(method):
    """On a generated calibration split (1,000) and test split (5,000): 90 % +- 2 points."""
    pred_cal, true_cal = _split(0, 1000, hetero=True)
    pred_test, true_test = _split(1, 5000, hetero=True)
    cal = calibrate_intervals(pred_cal, true_cal, coverage=0.9, method=method)
    lo, hi = apply_calibration(cal, pred_test)
    m = interval_metrics(true_test, lo, hi)
    assert abs(m["coverage"] - 90.0) <= 2.0, m
    if method == "band":  # wider where the errors are larger, and nominal per band
        qs = cal["band_quantiles_months"]
        assert qs[-1] > 1.5 * qs[0]
        old = (pred_test >= 120) & (pred_test < 180)  # a band of the *predicted* age
        inside = (true_test >= lo) & (true_test <= hi)
        assert abs(100 * inside[old].mean() - 90.0) <= 3.0


def test_band_calibration_beats_global_width_where_errors_are_small():
    pred_cal, true_cal = _split(2, 1000, hetero=True)
    pred_test, true_test = _split(3, 3000, hetero=True)
    g = interval_metrics(
        true_test, *apply_calibration(calibrate_intervals(pred_cal, true_cal), pred_test)
    )
    b_cal = calibrate_intervals(pred_cal, true_cal, method="band")
    b = interval_metrics(true_test, *apply_calibration(b_cal, pred_test))
    assert b["width_0to24mo"] < 0.7 * g["width_0to24mo"]


def test_sidecar_round_trip_and_clear_errors(tmp_path):
    weights = tmp_path / "model_final.pth"
    path = sidecar_path(weights)
    assert path.name == "model_final.intervals.json"
    cal = calibrate_intervals(*_split(4, 200), coverage=0.8)
    write_calibration(path, cal, dataset="val")
    back = load_calibration(path, coverage=0.8)
    assert back["quantile_months"] == cal["quantile_months"] and back["dataset"] == "val"
    with pytest.raises(IntervalCalibrationError, match="is for coverage 0.8.*--coverage 0.9"):
        load_calibration(path, coverage=0.9)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": "band", "coverage": 0.9, "quantile_months": 3.0}))
    with pytest.raises(IntervalCalibrationError, match=r"bad.json.*band_edges_months"):
        load_calibration(bad)
    with pytest.raises(IntervalCalibrationError, match="none.json: cannot read"):
        load_calibration(tmp_path / "none.json")
    with pytest.raises(ValueError, match="too few for coverage 0.99"):
        calibrate_intervals([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], coverage=0.99)


def test_lower_end_is_clipped_at_zero():
    lo, hi = apply_calibration({"method": "global", "quantile_months": 10.0}, [4.0, 50.0])
    assert lo.tolist() == [0.0, 40.0] and hi.tolist() == [14.0, 60.0]


def test_rank_interval_of_known_distributions():
    k = 20  # ranks 0..19, width 12 months
    point = torch.zeros(1, k - 1)
    point[0, :7] = 1.0  # P(rank > j) = 1 for j < 7: all mass on rank 7
    lo, hi = rank_interval_months(point, 12.0, 0.9)
    assert (float(lo), float(hi)) == (84.0, 84.0)
    # uniform over the 20 ranks: P(rank > j) = (19 - j) / 20; 5 % and 95 % ends are ranks 0 and 18
    uniform = ((k - 1 - torch.arange(k - 1)) / k).unsqueeze(0).float()
    lo, hi = rank_interval_months(uniform, 1.0, 0.9)
    assert (float(lo), float(hi)) == (0.0, 18.0)
    # non-monotone probabilities (independent formulation) are made monotone, not misread
    wobbly = torch.tensor([[0.9, 0.95, 0.2, 0.3, 0.0]])
    lo, hi = rank_interval_months(wobbly, 1.0, 0.5)
    assert 0.0 <= float(lo) <= float(hi) <= 5.0
