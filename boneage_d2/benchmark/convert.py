"""Conversion section: ``convert_split`` on an RSNA-sized input, masks off; input not timed."""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .timing import log

__all__ = ["NUM_KEYPOINTS", "bench_convert", "build_convert_input", "convert_case"]

NUM_KEYPOINTS = 17  # BoNet hand keypoints per image


def _write_labels(path: Path, ids, ages, males) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "boneage", "male"])
        for i, a, m in zip(ids, ages, males):
            w.writerow([int(i), int(a), "True" if m else "False"])


def build_convert_input(root: Path, rows: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write an RSNA-like training split under ``root``; returns (labels, images, keypoints).

    A label CSV (``id,boneage,male``), one small but real PNG per row (48-160 px per side, so
    every header is really read) and a BoNet-style 17-point keypoint json covering every image.
    """
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1377, 1377 + rows)
    ages = rng.integers(1, 229, size=rows)
    males = rng.integers(0, 2, size=rows).astype(bool)
    labels = root / "boneage-training-dataset.csv"
    _write_labels(labels, ids, ages, males)
    kp_images, kp_anns = [], []
    for n, rid in enumerate(ids.tolist()):
        width, height = (int(v) for v in rng.integers(48, 161, size=2))
        yy, xx = np.mgrid[0:height, 0:width]
        img = ((xx * 3 + yy * 2 + n) % 200 + 30).astype(np.uint8)
        cv2.imwrite(os.fspath(images / f"{rid}.png"), img)
        xs = rng.uniform(0, width - 1, NUM_KEYPOINTS)
        ys = rng.uniform(0, height - 1, NUM_KEYPOINTS)
        kps = [v for x, y in zip(xs, ys) for v in (round(float(x), 2), round(float(y), 2), 2)]
        kp_images.append({"id": n, "file_name": f"{rid}.png", "width": width, "height": height})
        kp_anns.append(
            {
                "id": n,
                "image_id": n,
                "category_id": 1,
                "bbox": [1.0, 1.0, width - 2.0, height - 2.0],
                "keypoints": kps,
                "num_keypoints": NUM_KEYPOINTS,
            }
        )
    keypoints = root / "RSNA_Anatomical_ROIs_Training.json"
    categories = [{"id": 1, "name": "hand", "keypoints": [], "skeleton": []}]
    keypoints.write_text(
        json.dumps({"images": kp_images, "annotations": kp_anns, "categories": categories})
    )
    return labels, images, keypoints


def convert_case(rows: int, workers: int) -> str:
    """The results' ``case`` label of one conversion."""
    return f"{rows:,} rows, masks off, {workers} worker(s)"


def bench_convert(rows: int, workers: int = 1, seed: int = 0) -> dict[str, Any]:
    """Seconds of one ``convert_split`` (masks off) on ``build_convert_input(rows)``.

    Timed: the whole call (reading and checking the CSV and keypoints, every PNG header and
    trailer, building the annotations, writing json and report). Not timed: the input.
    """
    from boneage_d2.convert import convert_split

    with tempfile.TemporaryDirectory(prefix="boneage_bench_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        labels, images, keypoints = build_convert_input(root, rows, seed)
        build_s = time.perf_counter() - t0
        out = root / "out" / "train.json"
        t0 = time.perf_counter()
        report = convert_split(
            labels, images, out, keypoints=keypoints, workers=workers, progress=False
        )
        seconds = time.perf_counter() - t0
        json_mb = out.stat().st_size / 1e6
    log(f"  {seconds:.2f} s, {rows / seconds:,.0f} rows/s")
    return {
        "rows": rows,
        "workers": workers,
        "input_build_s": build_s,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "json_mb": json_mb,
        "summary": report.summary(),
    }
