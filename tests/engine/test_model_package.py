"""Model packages: train_net writes one beside model_final.pth; predict, calibrate, export and
serve take its path in place of a config and weights; a phantom-trained one warns."""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path

import pytest
from detectron2.engine import default_argument_parser

from boneage_d2.data import register_boneage_split
from boneage_d2.engine import load_inference_config
from boneage_d2.engine.model_package import (
    ModelPackage,
    SyntheticTrainingWarning,
    write_model_package,
)
from boneage_d2.utils.provenance import git_revision
from boneage_d2.version import __version__
from tests.cli import load_tool
from tests.fixtures import CONFIGS, write_tiny_dataset

train_net = load_tool("train_net")
predict = load_tool("predict")
calibrate = load_tool("calibrate_intervals")
export = load_tool("export_model")

CONFIG = str(CONFIGS / "Global/R18-phantom-demo.yaml")
SIZE = ["BONEAGE.INPUT.LONG_SIDE_TRAIN", "64", "BONEAGE.INPUT.LONG_SIDE_TEST", "64"]


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package_run")
    opts = [
        *("DATASETS.TRAIN", f"('{tiny_dataset}',)", "DATASETS.TEST", f"('{tiny_dataset}',)"),
        *("SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "3", "SOLVER.WARMUP_ITERS", "1"),
        *("DATALOADER.NUM_WORKERS", "0", "BONEAGE.EVAL.BOOTSTRAP_SAMPLES", "100"),
        *(*SIZE, "OUTPUT_DIR", str(out)),
    ]
    train_net.main(default_argument_parser().parse_args(["--config-file", CONFIG, *opts]))
    return out


def test_train_net_writes_a_self_describing_package(run, tiny_dataset):
    pkg = run / "model_package"
    assert sorted(p.name for p in pkg.iterdir()) == [
        "config.yaml",
        "model_card.json",
        "model_card.md",
        "model_final.pth",
    ]
    card = json.loads((pkg / "model_card.json").read_text())
    prov = json.loads((run / "provenance.json").read_text())
    assert card["config_name"] == CONFIG and card["package_version"] == __version__
    assert card["git_revision"] == prov["git_revision"] == git_revision()
    (split,) = card["training_data"]["splits"]
    assert split == {
        "name": tiny_dataset,
        "images": 24,
        "sha1": prov["datasets_sha1"][tiny_dataset],
    }
    assert card["training_data"]["synthetic"] is False
    metrics = card["metrics"][tiny_dataset]
    assert metrics["num_images"] == 24 and metrics["MAE_CI95"][0] <= metrics["MAE"]
    assert len(metrics["mean_predictor_MAE_CI95"]) == 2 and "beats_mean_predictor" in metrics
    assert "not a medical device" in " ".join(card["limits"]).lower()
    md = (pkg / "model_card.md").read_text()
    assert "| split | images | MAE | 95% CI | mean predictor MAE | 95% CI |" in md
    assert "Research only, not a medical device" in md and "## Intended use" in md
    assert "WEIGHTS: ''" in (pkg / "config.yaml").read_text()  # relocatable: no absolute path


def _predict(config: str, out: Path, film: str, *extra: str) -> dict:
    argv = ["--config-file", config, "--input", film, "--sex", "M", "--output-dir", str(out)]
    assert predict.main([*argv, "--num-workers", "0", *extra]) == 0  # extra: opts come last
    with open(out / "predictions.csv", newline="") as f:
        return next(csv.DictReader(f))


def test_predict_calibrate_export_and_serve_take_the_package(run, tiny_dataset, tmp_path):
    pkg = str(run / "model_package")
    film = str(Path(os.path.dirname(_first_file(tiny_dataset))) / "1000.png")
    weights = ["--weights", str(run / "model_final.pth")]
    pair = _predict(CONFIG, tmp_path / "pair", film, *weights, *SIZE)
    packaged = _predict(pkg, tmp_path / "pkg", film)
    assert packaged["boneage_months"] == pair["boneage_months"]
    assert packaged["boneage_lo_months"] == ""  # not calibrated yet

    assert calibrate.main(["--config-file", pkg, "--dataset", tiny_dataset]) == 0
    card = json.loads((run / "model_package/model_card.json").read_text())
    assert card["interval_calibration"]["dataset"] == tiny_dataset
    assert card["files"]["intervals"] == "model_final.intervals.json"
    assert "split-conformal intervals" in (run / "model_package/model_card.md").read_text()
    calibrated = _predict(pkg, tmp_path / "cal", film)
    assert float(calibrated["boneage_lo_months"]) < float(calibrated["boneage_months"])

    argv = ["--config-file", pkg, "--output-dir", str(tmp_path / "export")]
    assert export.main([*argv, "--format", "torchscript", "--check", "1"]) == 0
    info = json.loads((tmp_path / "export/export.json").read_text())
    assert info["parity"]["torchscript"]["ok"]

    pytest.importorskip("fastapi")
    from boneage_d2.serve import load_models, parse_model_spec

    (served,) = load_models([parse_model_spec(f"m={pkg}")]).values()
    assert served.predictor.cfg.MODEL.WEIGHTS == os.path.join(pkg, "model_final.pth")
    assert served.describe()["calibrated"]


def _first_file(name: str) -> str:
    from detectron2.data import DatasetCatalog

    return DatasetCatalog.get(name)[0]["file_name"]


def test_a_phantom_trained_package_warns_and_a_rewrite_drops_old_files(run, tmp_path):
    register_boneage_split("phantom_pkgtest_train", write_tiny_dataset(tmp_path / "data", 6))
    cfg = load_inference_config(CONFIG, SIZE)
    cfg.DATASETS.TRAIN, cfg.OUTPUT_DIR = ("phantom_pkgtest_train",), str(run)
    (run / "model_package/stale.txt").write_text("from an older package")
    beside = run / "model_final.intervals.json"  # a calibration beside the run's weights ...
    beside.write_text((run / "model_package/model_final.intervals.json").read_text())
    old = (run / "model_final.pth").stat().st_mtime - 60
    os.utime(beside, (old, old))  # ... of earlier weights: left out
    pkg = write_model_package(cfg, config_name="Global/R18-phantom-demo.yaml")
    assert not (pkg / "stale.txt").exists()
    assert not (pkg / "model_final.intervals.json").exists()
    beside.touch()  # calibrated after training: packaged
    pkg = write_model_package(cfg, config_name="Global/R18-phantom-demo.yaml")
    assert ModelPackage.load(pkg).card["files"]["intervals"] == "model_final.intervals.json"
    card = ModelPackage.load(pkg).card
    assert card["training_data"]["synthetic"] and "meaningless" in card["limits"][0]
    with pytest.warns(SyntheticTrainingWarning, match="synthetic phantom films only"):
        load_inference_config(str(pkg))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticTrainingWarning)
        load_inference_config(CONFIG)  # a config file alone: no card, no warning


@pytest.mark.parametrize(
    "tool, argv", [(calibrate, ["--dataset", "x"]), (export, ["--output-dir", "y"])]
)
def test_weights_are_required_without_a_package(tool, argv, capsys):
    with pytest.raises(SystemExit):
        tool.main(["--config-file", CONFIG, *argv])
    assert (
        "--weights is required unless --config-file is a model package" in capsys.readouterr().err
    )
