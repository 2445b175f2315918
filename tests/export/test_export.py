"""Exported graphs (TorchScript, ONNX Runtime) agree with the eager predictor on phantom films."""

import json

import numpy as np
import pytest
from detectron2.checkpoint import DetectionCheckpointer

from boneage_d2.engine import BoneAgeTrainer, load_config
from boneage_d2.engine.predictor import BoneAgePredictor
from boneage_d2.export import ExportedBoneAgeModel
from boneage_d2.phantom import PhantomConfig, sample_phantom
from tests.cli import load_tool
from tests.fixtures import REPO

export_tool = load_tool("export_model")
SMALL = ["BONEAGE.INPUT.LONG_SIDE_TRAIN", "128", "BONEAGE.INPUT.LONG_SIDE_TEST", "128"]
SMALL += ["MODEL.DEVICE", "cpu"]
CONFIGS = {
    "global": REPO / "configs/Global/R18-phantom-demo.yaml",
    "alanet": REPO / "configs/ALA-Net/R18-phantom-demo.yaml",
    "handseg": REPO / "configs/HandSeg-RAN/R18-phantom-demo.yaml",
}


def _weights(name: str, tmp_path) -> str:
    """A randomly initialised checkpoint of ``name`` (parity needs no training)."""
    cfg = load_config(str(CONFIGS[name]), SMALL)
    model = BoneAgeTrainer.build_model(cfg)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save(f"{name}_final")
    return str(tmp_path / f"{name}_final.pth")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["global", "alanet"])
def test_exported_graphs_match_the_eager_model(name, tmp_path):
    pytest.importorskip("onnxruntime")
    weights, out = _weights(name, tmp_path), tmp_path / "export"
    argv = ["--config-file", str(CONFIGS[name]), "--weights", weights]
    argv += ["--output-dir", str(out), "--check", "3", *SMALL]
    assert export_tool.main(argv) == 0
    info = json.loads((out / "export.json").read_text())
    assert info["formats"] == {"torchscript": "model.ts", "onnx": "model.onnx"}
    for fmt in ("torchscript", "onnx"):
        parity = info["parity"][fmt]
        assert parity["ok"] and parity["age_months"] <= 0.05 and parity["box_px"] <= 0.5, fmt

    # a film of another shape than the one traced: the graphs take any image size
    cfg = load_config(str(CONFIGS[name]), SMALL + ["MODEL.WEIGHTS", weights])
    predictor = BoneAgePredictor(cfg)
    film = sample_phantom(PhantomConfig(landscape_prob=1.0), seed=11, image_id=0).image
    assert film.shape[1] > film.shape[0]
    want = predictor(film, male=False)
    for file in ("model.ts", "model.onnx"):
        got = ExportedBoneAgeModel(out / file, cfg)(film, male=False)
        assert got["boneage"] == pytest.approx(float(want["boneage"]), abs=0.05), file
        if name == "alanet":
            boxes = want["instances"].pred_boxes.tensor.numpy()
            assert np.abs(got["boxes"] - boxes).max() <= 0.5, file
            assert got["boneage_rank_lo"] <= got["boneage_rank_hi"]
        assert got["flags"] == predictor.checks.flags(film)


def test_handseg_says_why_it_does_not_export(tmp_path, capsys):
    weights = _weights("handseg", tmp_path)
    argv = ["--config-file", str(CONFIGS["handseg"]), "--weights", weights]
    argv += ["--output-dir", str(tmp_path / "export"), "--check", "1", *SMALL]
    assert export_tool.main(argv) == 2
    assert "data-dependent number of hands" in capsys.readouterr().err
    assert not (tmp_path / "export" / "model.ts").exists()


@pytest.mark.slow
def test_deploy_benchmark_runs_and_reports_ratios(tmp_path):
    pytest.importorskip("onnxruntime")
    bench = load_tool("benchmark_deploy")
    out = tmp_path / "deploy.json"
    assert bench.main(["--quick", "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["meta_architecture"] for r in res["exported"]] == ["ALANet", "GlobalBoneAgeRegressor"]
    for r in res["exported"]:
        assert set(r["ratio_to_reference"]) == {"eager", "torchscript", "onnxruntime"}
        assert all(v > 0 for v in r["median_s"].values())
    assert [r["clients"] for r in res["service"]] == [1, 4]
    assert all(r["requests_per_s"] > 0 and r["p95_ms"] >= r["p50_ms"] for r in res["service"])
