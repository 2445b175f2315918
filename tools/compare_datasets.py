#!/usr/bin/env python
"""Image statistics of converted datasets side by side: how close the phantom is to real films.

    python tools/compare_datasets.py datasets/phantom/coco/val.json /data/rsna/coco/train.json

For each converted json (hand masks needed: `convert_rsna.py --derive-masks` or stored masks),
over its first ``--num-images`` images with a hand mask: the long side, the hand's share of the
image, the mean grey level inside and outside the hand, the hand's 95th percentile (bone) and
standard deviation (contrast inside the hand). Mean and range per dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from boneage_d2.data.catalog import load_boneage_json
from boneage_d2.io.radiograph import read_radiograph
from boneage_d2.utils.argtypes import int_at_least

COLUMNS = ("long side (px)", "hand share", "hand mean", "background mean", "hand p95", "hand std")


def image_stats(json_path: Path, num_images: int) -> np.ndarray:
    """One row of :data:`COLUMNS` per image that has a hand mask (ValueError when none has)."""
    from pycocotools import mask as mask_utils

    rows = []
    for record in load_boneage_json(json_path):
        masks = [a["segmentation"] for a in record["annotations"] if "segmentation" in a]
        if not masks:
            continue
        gray = read_radiograph(record["file_name"])
        hand = np.zeros(gray.shape, bool)
        for rle in masks:
            hand |= mask_utils.decode(rle).astype(bool)
        inside = gray[hand]
        rows.append(
            (
                max(gray.shape),
                hand.mean(),
                inside.mean(),
                gray[~hand].mean(),
                np.percentile(inside, 95),
                inside.std(),
            )
        )
        if len(rows) == num_images:
            break
    if not rows:
        raise ValueError(f"{json_path}: no image with a hand mask (convert with --derive-masks)")
    return np.asarray(rows, dtype=np.float64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("jsons", nargs="+", type=Path, help="converted COCO jsons")
    p.add_argument("--num-images", type=int_at_least(1), default=50)
    args = p.parse_args(argv)
    try:
        table = {path: image_stats(path, args.num_images) for path in args.jsons}
    except (OSError, ValueError) as e:  # missing or invalid json, unreadable image
        p.error(str(e))
    print("| dataset | images | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for path, stats in table.items():
        cells = [
            f"{m:.4g} [{lo:.4g}, {hi:.4g}]"
            for m, lo, hi in zip(stats.mean(0), stats.min(0), stats.max(0))
        ]
        print(f"| {path} | {len(stats)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
