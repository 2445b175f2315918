"""BoneAgeEvaluator and the metrics it reports."""

import csv

import numpy as np
import pytest

from boneage_d2.evaluation import PREDICTIONS_CSV, BoneAgeEvaluator, boneage_metrics


def test_metrics_on_known_numbers():
    true = [10.0, 30.0, 100.0, 200.0]
    pred = [14.0, 30.0, 90.0, 220.0]  # errors 4, 0, 10, 20
    male = [True, False, True, False]
    m = boneage_metrics(
        true, pred, male, age_bands=(0, 24, 120, 240), train_mean_months=100.0, bootstrap_samples=0
    )
    assert m["MAE"] == pytest.approx(8.5)
    assert m["RMSE"] == pytest.approx(np.sqrt((16 + 0 + 100 + 400) / 4))
    assert m["MAE_male"] == pytest.approx(7.0) and m["MAE_female"] == pytest.approx(10.0)
    assert m["MAE_0to24mo"] == pytest.approx(4.0)
    assert m["MAE_24to120mo"] == pytest.approx(5.0)
    assert m["MAE_120to240mo"] == pytest.approx(20.0)
    assert m["within_6mo"] == pytest.approx(50.0) and m["within_12mo"] == pytest.approx(75.0)
    assert m["mean_predictor_MAE"] == pytest.approx((90 + 70 + 0 + 100) / 4)
    # the mean predictor per subgroup, so every subgroup MAE can be read beside it
    assert m["mean_predictor_MAE_male"] == pytest.approx(45.0)  # |10-100|, |100-100|
    assert m["mean_predictor_MAE_female"] == pytest.approx(85.0)  # |30-100|, |200-100|
    assert m["mean_predictor_MAE_24to120mo"] == pytest.approx(35.0)
    assert "MAE_CI95_lo" not in m


def test_bootstrap_interval_brackets_the_mae():
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 228, 200)
    pred = true + rng.normal(0, 5, 200)
    m = boneage_metrics(true, pred, rng.integers(0, 2, 200).astype(bool))
    assert m["MAE_CI95_lo"] < m["MAE"] < m["MAE_CI95_hi"]
    assert 0.3 < m["MAE_CI95_hi"] - m["MAE_CI95_lo"] < 2.0  # ~ +-0.5 month at n=200, sd 5


def test_the_mean_predictor_gets_its_interval_from_the_same_resamples():
    rng = np.random.default_rng(1)
    true = rng.uniform(0, 228, 300)
    m = boneage_metrics(
        true, true + rng.normal(0, 5, 300), np.ones(300, bool), train_mean_months=114
    )
    lo, hi = m["mean_predictor_MAE_CI95_lo"], m["mean_predictor_MAE_CI95_hi"]
    assert lo < m["mean_predictor_MAE"] < hi and hi < 70  # |U(0, 228) - 114| averages 57
    assert m["MAE_CI95_hi"] < lo  # a good model's interval clears the mean predictor's
    assert "mean_predictor_MAE_CI95_lo" not in boneage_metrics(true, true, np.ones(300, bool))


def _run(evaluator, rows):
    evaluator.reset()
    for image_id, true, pred, male in rows:
        evaluator.process(
            [
                {
                    "image_id": image_id,
                    "file_name": f"/x/{image_id}.png",
                    "boneage": true,
                    "male": male,
                }
            ],
            [{"boneage": pred}],
        )
    return evaluator.evaluate()


def test_evaluator_writes_csv_and_dedupes_and_skips_unlabelled(tmp_path):
    ev = BoneAgeEvaluator(
        "d", str(tmp_path), distributed=False, train_mean_months=50.0, bootstrap_samples=0
    )
    res = _run(
        ev,
        [
            (1, 10.0, 12.0, True),
            (2, 40.0, 30.0, False),
            (1, 10.0, 12.0, True),
            (3, None, 70.0, True),
        ],
    )
    assert res["boneage"]["MAE"] == pytest.approx(6.0)
    assert res["boneage"]["num_images"] == 2
    assert res["boneage"]["mean_predictor_MAE"] == pytest.approx(25.0)
    rows = list(csv.DictReader(open(tmp_path / PREDICTIONS_CSV)))
    assert [r["image_id"] for r in rows] == ["1", "2", "3"]
    assert rows[2]["boneage_true"] == "" and rows[2]["abs_error"] == ""
    assert rows[1]["abs_error"] == "10.000"


def test_evaluator_gathers_rows_of_every_process(monkeypatch):
    """Under DDP each rank sees a shard; the main rank must score the union exactly once."""
    from detectron2.utils import comm

    other_rank_rows = [
        {
            "image_id": 9,
            "file_name": "9.png",
            "male": False,
            "boneage_true": 100.0,
            "boneage_pred": 80.0,
            "flags": "",
        }
    ]
    monkeypatch.setattr(comm, "synchronize", lambda: None)
    monkeypatch.setattr(comm, "gather", lambda rows, dst=0: [rows, other_rank_rows])
    monkeypatch.setattr(comm, "is_main_process", lambda: True)
    ev = BoneAgeEvaluator("d", None, distributed=True, bootstrap_samples=0)
    res = _run(ev, [(1, 10.0, 12.0, True)])
    assert res["boneage"]["num_images"] == 2
    assert res["boneage"]["MAE"] == pytest.approx(11.0)
    monkeypatch.setattr(comm, "is_main_process", lambda: False)
    assert _run(ev, [(1, 10.0, 12.0, True)]) == {}


def test_beats_mean_predictor_needs_the_ratio_and_separate_intervals():
    from boneage_d2.evaluation import beats_mean_predictor

    def m(mae, hi, mean, mean_lo):
        return {
            "boneage/MAE": mae,
            "boneage/MAE_CI95_hi": hi,
            "boneage/mean_predictor_MAE": mean,
            "boneage/mean_predictor_MAE_CI95_lo": mean_lo,
        }

    assert beats_mean_predictor(m(20.0, 22.0, 32.0, 29.0)) is True
    assert beats_mean_predictor(m(25.0, 27.0, 32.0, 29.0)) is False  # 0.78x
    assert beats_mean_predictor(m(23.0, 29.5, 32.0, 29.0)) is False  # intervals overlap
    assert beats_mean_predictor({"boneage/MAE": 1.0}) is None
