"""tools/results_table.py: MAE by sex and age band beside the mean predictor, from a run's CSV."""

import csv

import numpy as np
import pytest

from boneage_d2.data import register_boneage_split
from boneage_d2.data.catalog import load_boneage_json
from tests.cli import load_tool
from tests.fixtures import write_tiny_dataset


def _write_run(folder, dataset, rows):
    out = folder / "inference" / dataset
    out.mkdir(parents=True)
    with open(out / "boneage_predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "file_name", "male", "boneage_true", "boneage_pred", "abs_error"])
        for i, (male, true, pred) in enumerate(rows):
            w.writerow([i, f"{i}.png", male, true, pred, abs(pred - true)])


def test_table_by_group_beside_the_mean(tmp_path, capsys):
    train_json = write_tiny_dataset(tmp_path / "train", num_images=6)
    register_boneage_split("results_table_train", train_json)
    mean = float(np.mean([r["boneage"] for r in load_boneage_json(train_json)]))
    rows = [(True, 30.0, 40.0), (False, 150.0, 150.0), (True, 200.0, 170.0)]
    _write_run(tmp_path / "run", "some_val", rows)
    argv = ["--dataset", "some_val", "--train-dataset", "results_table_train"]
    assert load_tool("results_table").main([*argv, "--run", f"mine={tmp_path / 'run'}"]) == 0
    out = capsys.readouterr().out
    assert f"mean predictor = {mean:.1f} months" in out
    assert "films per group: male 2, female 1, 24to60mo 1, 120to180mo 1, 180to240mo 1" in out
    table = [line.split("|") for line in out.splitlines() if line.startswith("| ")]
    lines = {cells[1].strip(): cells[2:-1] for cells in table}
    mine = [c.strip() for c in lines["mine"]]
    assert mine[0] == "3" and mine[1].startswith("13.3 [")  # (10 + 0 + 30) / 3
    assert mine[2:] == ["20.0", "0.0", "10.0", "0.0", "30.0"]  # male, female, 3 bands
    baseline = [c.strip() for c in lines["mean predictor (training mean)"]]
    assert baseline[2] == f"{(abs(30 - mean) + abs(200 - mean)) / 2:.1f}"


def test_missing_predictions_name_the_file(tmp_path, capsys):
    argv = ["--dataset", "v", "--train-dataset", "t", "--run", f"x={tmp_path}"]
    with pytest.raises(SystemExit):
        load_tool("results_table").main(argv)
    assert f"no {tmp_path}/inference/v/boneage_predictions.csv" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--run", "no-label-here"], "expected LABEL=OUTPUT_DIR"),
        (["--run", "x=y", "--bootstrap-samples", "-1"], "expected a whole number >= 0"),
    ],
)
def test_bad_arguments_are_named(extra, message, capsys):
    with pytest.raises(SystemExit):
        load_tool("results_table").main(["--dataset", "v", "--train-dataset", "t", *extra])
    assert message in capsys.readouterr().err


def test_ensemble_row_averages_its_runs_film_by_film(tmp_path, capsys):
    train_json = write_tiny_dataset(tmp_path / "train", num_images=6)
    register_boneage_split("results_table_train_ens", train_json)
    _write_run(tmp_path / "a", "v", [(True, 30.0, 40.0), (False, 150.0, 150.0)])
    # the second run lists the same films in the other order: matched by image_id, not by row
    out = tmp_path / "b" / "inference" / "v"
    out.mkdir(parents=True)
    with open(out / "boneage_predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "file_name", "male", "boneage_true", "boneage_pred"])
        w.writerow([1, "1.png", False, 150.0, 130.0])
        w.writerow([0, "0.png", True, 30.0, 30.0])
    argv = ["--dataset", "v", "--train-dataset", "results_table_train_ens"]
    argv += ["--run", f"a={tmp_path / 'a'}", "--run", f"b={tmp_path / 'b'}", "--ensemble", "ab=a,b"]
    assert load_tool("results_table").main(argv) == 0
    table = [line.split("|") for line in capsys.readouterr().out.splitlines() if "| ab " in line]
    assert table[0][3].strip().startswith("7.5 [")  # |35 - 30| and |140 - 150|, averaged
    with pytest.raises(SystemExit):
        load_tool("results_table").main([*argv[:-1], "ab=a,zz"])
