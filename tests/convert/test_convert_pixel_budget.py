"""The converter skips an image over the pixel budget with a report row naming its dimensions
and the limit (``--max-pixels``), without decoding it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from boneage_d2.convert import convert_split
from tests.cli import load_tool
from tests.image_bombs import png_bomb

convert_rsna = load_tool("convert_rsna")


def _split(root: Path) -> tuple[Path, Path]:
    images = root / "imgs"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "101.png"), np.full((80, 60), 120, np.uint8))
    (images / "102.png").write_bytes(png_bomb())
    labels = root / "labels.csv"
    labels.write_text("id,boneage,male\n101,100,True\n102,50,False\n")
    return labels, images


def _report(path: str | Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_png_bomb_is_a_skipped_row(tmp_path):
    labels, images = _split(tmp_path)
    rep = convert_split(labels, images, tmp_path / "out.json", progress=False, derive_masks=True)
    assert [im["rsna_id"] for im in json.loads((tmp_path / "out.json").read_text())["images"]] == [
        "101"
    ]
    (row,) = [r for r in _report(rep.report_path) if r["action"] != "note"]
    assert (row["file"], row["row"], row["action"]) == ("labels.csv", "2", "image skipped")
    assert "'imgs/102.png': 30000x30000 pixels (900 MP)" in row["reason"]
    assert "pixel limit of 40 MP" in row["reason"]


def test_max_pixels_option_sets_the_limit(tmp_path, capsys):
    labels, images = _split(tmp_path)
    out = tmp_path / "out.json"
    argv = ["--labels", str(labels), "--images", str(images), "--output", str(out), "--quiet"]
    assert convert_rsna.main([*argv, "--max-pixels", "1000"]) == 1  # no image left
    reasons = [r["reason"] for r in _report(tmp_path / "out.skipped.csv")]
    assert any("60x80 pixels (0.0048 MP) is over the pixel limit of 0.001 MP" in r for r in reasons)
    assert "none of its 2 label rows gave an image" in capsys.readouterr().err
