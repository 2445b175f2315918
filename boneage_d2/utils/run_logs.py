"""Reading a finished training run's folder: its final evaluation and how long it trained.

Detectron2 appends one json object per logged step to ``<OUTPUT_DIR>/metrics.json``; evaluation
results are flat keys (``boneage/MAE``, ``bbox/AP50``, ...). Torch-free: reports and tables read
runs without loading a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["final_iters", "final_metrics", "read_metrics"]

EVAL_PREFIXES = ("boneage/", "bbox/", "segm/")


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """Every entry of ``run_dir/metrics.json`` in order (empty when the file is missing)."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def final_metrics(run_dir: str | os.PathLike) -> dict[str, float]:
    """The run's last evaluation entry ({} when it has none).

    When the run evaluated ALA-Net's ROI view (``BONEAGE.EVAL.DETECTION_VIEW: roi`` in its
    ``config.yaml``), the COCO keys are renamed ``roi/AP...`` so they cannot be read as hand AP.
    """
    last: dict[str, float] = {}
    for entry in read_metrics(run_dir):
        if any(k.startswith(EVAL_PREFIXES) for k in entry):
            last = entry
    cfg_path = Path(run_dir) / "config.yaml"
    if cfg_path.is_file() and "DETECTION_VIEW: roi" in cfg_path.read_text():
        last = {k.replace("bbox/", "roi/", 1): v for k, v in last.items()}
    return last


def final_iters(run_dir: str | os.PathLike) -> int:
    """Iterations the run trained: its last training ``iteration`` in metrics.json, plus one.

    The last, not the largest: Detectron2 appends to metrics.json, so a reused output folder
    still holds an earlier, longer run's lines before this run's.
    """
    entries = read_metrics(run_dir)
    return next((e["iteration"] for e in reversed(entries) if "total_loss" in e), -1) + 1
