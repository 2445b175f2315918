"""Time ``convert_split`` on an RSNA-sized input (12,611 training rows), masks off.

Builds, in a temporary folder, a training label CSV (``id,boneage,male``), one small but real PNG
per row (varied sizes, so every header is really read) and a BoNet-style 17-point keypoint json
covering every image, then times one conversion and prints rows/s and total seconds::

    .venv/bin/python scripts/benchmark_convert.py            # 12,611 rows
    .venv/bin/python scripts/benchmark_convert.py --rows 500 --workers 2

The input generation is not timed. What is timed is the whole ``convert_split`` call: reading
and validating the CSV and the keypoint json, reading every PNG header and trailer, building the
annotations (one hand + 17 ROI boxes per image), writing the json and the report atomically.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RSNA_TRAIN_ROWS = 12_611
NUM_KEYPOINTS = 17


def build_input(root: Path, rows: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write labels CSV, ``images/<id>.png`` and a 17-point keypoint json under ``root``."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1377, 1377 + rows)
    ages = rng.integers(1, 229, size=rows)
    males = rng.integers(0, 2, size=rows).astype(bool)
    labels = root / "boneage-training-dataset.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "boneage", "male"])
        for i, a, m in zip(ids, ages, males):
            w.writerow([int(i), int(a), "True" if m else "False"])
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
    keypoints.write_text(
        json.dumps(
            {
                "images": kp_images,
                "annotations": kp_anns,
                "categories": [{"id": 1, "name": "hand", "keypoints": [], "skeleton": []}],
            }
        )
    )
    return labels, images, keypoints


def main(argv: list[str] | None = None) -> int:
    """Build the input, time one conversion, print the numbers."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=RSNA_TRAIN_ROWS, help="label rows / images")
    p.add_argument("--workers", type=int, default=1, help="convert_split workers")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.rows < 1 or args.workers < 1:
        p.error("--rows and --workers must be >= 1")

    from boneage_d2.data.rsna import convert_split

    with tempfile.TemporaryDirectory(prefix="boneage_bench_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        labels, images, keypoints = build_input(root, args.rows, args.seed)
        t_build = time.perf_counter() - t0
        out = root / "out" / "train.json"
        t0 = time.perf_counter()
        report = convert_split(
            labels, images, out, keypoints=keypoints, workers=args.workers, progress=False
        )
        seconds = time.perf_counter() - t0
        size_mb = out.stat().st_size / 1e6
    print(
        f"input: {args.rows} rows, PNGs 48-160 px per side, 17 keypoints each "
        f"(generated in {t_build:.1f} s, not timed)"
    )
    print(report.summary())
    print(
        f"convert_split (masks off, workers={args.workers}): {seconds:.2f} s total, "
        f"{args.rows / seconds:,.0f} rows/s, json {size_mb:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
