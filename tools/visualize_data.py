"""Draw the ground truth of a registered dataset (or a converted json) to PNG files.

    python tools/visualize_data.py --dataset phantom_boneage_train --output-dir outputs/vis -n 8
    python tools/visualize_data.py --json datasets/rsna/coco/train.json --output-dir outputs/vis

Each PNG shows the hand masks and boxes, the keypoints with landmark names, the anatomical ROI
boxes, and the age and sex.
"""

from __future__ import annotations

import argparse
import os
import sys

from tqdm import tqdm


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="a registered dataset name")
    src.add_argument("--json", help="a converted COCO json (docs/data.md)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("-n", "--num-images", type=int, default=8, help="first N images (0 = all)")
    p.add_argument("--scale", type=float, default=1.0)
    args = p.parse_args(argv)
    if args.json and not os.path.isfile(args.json):
        p.error(f"--json {args.json}: file not found")
    if args.num_images < 0:
        p.error("--num-images must be >= 0")

    import cv2
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import boneage_d2  # noqa: F401  (registers the built-in dataset names)
    from boneage_d2.data.catalog import load_boneage_json
    from boneage_d2.vis.overlays import draw_ground_truth

    if args.dataset:
        if args.dataset not in DatasetCatalog.list():
            p.error(f"--dataset {args.dataset!r} is not registered")
        records, meta = DatasetCatalog.get(args.dataset), MetadataCatalog.get(args.dataset)
    else:
        records, meta = load_boneage_json(args.json), None
    if args.num_images:
        records = records[: args.num_images]
    os.makedirs(args.output_dir, exist_ok=True)
    for r in tqdm(records, desc="drawing", unit="img"):
        out = os.path.join(args.output_dir, f"{r['image_id']}.png")
        cv2.imwrite(out, draw_ground_truth(r, meta, args.scale)[:, :, ::-1])
    print(f"wrote {len(records)} images to {args.output_dir}")
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
