"""The wheel, installed into a fresh virtualenv and used from outside the checkout: every console
script's ``--help``, a tiny phantom generated and converted, one training iteration from a
packaged config name, and a prediction for one film from the model package it wrote."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.fixtures import REPO

TOOLS = {  # console script -> a word its --help prints
    "boneage-train": "--config-file",
    "boneage-lazy-train": "train.init_checkpoint",
    "boneage-predict": "--sex-csv",
    "boneage-convert": "--rsna-root",
    "boneage-phantom": "--num-train",
    "boneage-export": "--check-files",
    "boneage-calibrate": "--dataset",
    "boneage-serve": "--max-upload-mb",
}
SOURCES = ("setup.py", "pyproject.toml", "boneage_d2", "configs")


def _run(cmd: list, cwd: Path, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out


def _build_wheel(tmp: Path) -> Path:
    """``pip wheel`` of a copy of the package's sources (no build/ or egg-info in the checkout),
    with this environment's setuptools (no download)."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    _run([*cmd, "-w", tmp / "dist", src], tmp, dict(os.environ))
    (wheel,) = (tmp / "dist").glob("boneage_d2-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path, env: dict) -> Path:
    """A new virtualenv with the wheel installed; a .pth file lets it import this environment's
    torch, Detectron2 and the other dependencies (after its own site-packages)."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp, env)
    python = venv / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = _run([python, "-c", code], tmp, env).stdout
    ours = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    (Path(site.strip()) / "outer_env.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], tmp, env)
    return venv / "bin"


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", BONEAGE_DATASETS=str(tmp_path / "datasets"))
    wheel = _build_wheel(tmp_path)
    bin_dir = _fresh_venv(tmp_path, wheel, env)
    work = tmp_path / "work"  # outside the checkout: no configs/ or boneage_d2/ to fall back on
    work.mkdir()

    where = _run(
        [
            bin_dir / "python",
            "-c",
            "import boneage_d2, boneage_d2.model_zoo as z; print(boneage_d2.__file__); "
            "print(z.get_config_file('ALA-Net/paper.yaml')); print(len(z.list_configs())); "
            "print(z.get_config('ALA-Net/R18-phantom-demo.py').model._target_.__name__)",
        ],
        work,
        env,
    ).stdout.split()
    assert all(str(bin_dir.parent) in p for p in where[:2]), (
        where
    )  # the wheel's, not the checkout's
    assert int(where[2]) >= 30 and where[3] == "ALANet"  # a LazyConfig, its imports resolved
    helps = {  # all at once: each spends its ~4 s importing torch and Detectron2
        tool: subprocess.Popen(
            [bin_dir / tool, "--help"], cwd=work, env=env, stdout=subprocess.PIPE, text=True
        )
        for tool in TOOLS
    }
    for tool, proc in helps.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0 and TOOLS[tool] in out, (tool, out)

    raw = work / "raw"
    _run(
        [bin_dir / "boneage-phantom", "--output-dir", raw, "--num-train", "4", "--num-val", "2"]
        + ["--num-test", "1", "--seed", "0", "--image-long-side", "128", "--no-progress"],
        work,
        env,
    )
    coco = tmp_path / "datasets/phantom/coco"  # phantom_boneage_* under $BONEAGE_DATASETS
    _run(
        [bin_dir / "boneage-convert", "--rsna-root", raw, "--output-dir", coco, "--quiet"],
        work,
        env,
    )
    assert sorted(p.name for p in coco.glob("*.json")) == ["test.json", "train.json", "val.json"]

    run = work / "run"
    _run(
        [bin_dir / "boneage-train", "--config-file", "Global/R18-phantom-demo.yaml"]
        + ["SOLVER.MAX_ITER", "1", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "0"]
        + ["DATALOADER.NUM_WORKERS", "0", "BONEAGE.EVAL.BOOTSTRAP_SAMPLES", "10"]
        + ["OUTPUT_DIR", run],
        work,
        env,
        timeout=600,
    )
    assert (run / "model_package/model_card.json").is_file()

    (film,) = sorted((raw / "boneage-test-dataset").glob("*.png"))
    predicted = _run(  # the model package alone: its config and weights
        [bin_dir / "boneage-predict", "--config-file", run / "model_package"]
        + ["--input", film, "--sex", "F", "--output-dir", work / "pred", "--num-workers", "0"],
        work,
        env,
    )
    assert "trained on synthetic phantom films only" in predicted.stderr
    with open(work / "pred/predictions.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert Path(row["file"]).name == film.name and 0 <= float(row["boneage_months"]) <= 240
