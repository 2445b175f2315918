"""tools/predict.py flags a file over the pixel budget (its row names the dimensions and the
limit) and goes on; ``--max-pixels`` sets the limit."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from boneage_d2.engine import load_config
from tests.cli import load_tool
from tests.fixtures import CONFIGS
from tests.image_bombs import png_bomb

predict = load_tool("predict")
CONFIG = CONFIGS / "Global/R18-phantom-demo.yaml"
TINY = ["BONEAGE.INPUT.LONG_SIDE_TEST", "96", "BONEAGE.INPUT.LONG_SIDE_TRAIN", "96"]


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "predictions.csv", newline="") as f:
        return {Path(r["file"]).name: r for r in csv.DictReader(f)}


def test_a_png_bomb_is_a_flagged_row_and_the_limit_is_an_option(tmp_path, capsys):
    cfg = load_config(str(CONFIG), TINY)
    torch.manual_seed(0)
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("model_final")
    films = tmp_path / "in"
    films.mkdir()
    (films / "bomb.png").write_bytes(png_bomb())
    cv2.imwrite(str(films / "film.png"), np.full((200, 160), 90, np.uint8))
    argv = ["--config-file", str(CONFIG), "--weights", str(tmp_path / "model_final.pth")]
    argv += ["--input", str(films), "--sex", "M", "--num-workers", "0"]

    assert predict.main([*argv, "--output-dir", str(tmp_path / "a"), *TINY]) == 0
    rows = _rows(tmp_path / "a")
    assert rows["bomb.png"]["flags"] == "unreadable" and rows["bomb.png"]["boneage_months"] == ""
    assert (
        "30000x30000 pixels (900 MP) is over the pixel limit of 40 MP" in rows["bomb.png"]["error"]
    )
    assert rows["film.png"]["boneage_months"] != "" and rows["film.png"]["error"] == ""

    assert (
        predict.main([*argv, "--output-dir", str(tmp_path / "b"), "--max-pixels", "1000", *TINY])
        == 1
    )
    rows = _rows(tmp_path / "b")
    assert (
        "160x200 pixels (0.032 MP) is over the pixel limit of 0.001 MP" in rows["film.png"]["error"]
    )
    assert "none of the 2 input image(s) could be predicted" in capsys.readouterr().err
