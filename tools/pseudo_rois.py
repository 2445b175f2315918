#!/usr/bin/env python
"""Write a trained ALA-Net's ROI boxes on unannotated films as a keypoint json (self-training).

    python tools/pseudo_rois.py --config-file configs/ALA-Net/R18-phantom-demo.yaml \\
        --weights outputs/demo/alanet/model_final.pth \\
        --labels datasets/rsna_real/labels/train.csv --images ../shared/rsna_real/images \\
        --output datasets/rsna_real/pseudo_rois_train.json

Then ``tools/convert_rsna.py ... --keypoints <that json>`` gives the films ROI boxes for
ALA-Net's RPN (docs/real_films.md). The label file says which films and each one's sex.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from boneage_d2.utils.argtypes import int_at_least, number_above


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--config-file", required=True, help="the ALA-Net config the model was trained with"
    )
    p.add_argument("--weights", required=True, help="the ALA-Net checkpoint")
    p.add_argument("--labels", required=True, help="RSNA label file of the films (id and sex)")
    p.add_argument("--images", required=True, help="folder of <id>.png")
    p.add_argument("--output", required=True, help="keypoint json to write")
    p.add_argument(
        "--min-score",
        type=number_above(0.0, inclusive=True),
        default=0.5,
        help="ROIs below this objectness stay unlabelled [0.5]",
    )
    p.add_argument("--batch-size", type=int_at_least(1), default=8)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    for path, what in ((args.config_file, "--config-file"), (args.weights, "--weights")):
        if not Path(path).is_file():
            p.error(f"{what} {path}: file not found")
    if not Path(args.images).is_dir():
        p.error(f"--images {args.images}: no such folder")

    from boneage_d2.convert import read_labels
    from boneage_d2.engine import load_config
    from boneage_d2.engine.predictor import BoneAgePredictor
    from boneage_d2.engine.pseudo_labels import pseudo_keypoint_json
    from boneage_d2.io.atomic import atomic_write_json

    labels = read_labels(args.labels)
    files = [str(Path(args.images) / f"{i}.png") for i in labels["id"]]
    cfg = load_config(args.config_file, args.opts + ["MODEL.WEIGHTS", args.weights])
    if cfg.MODEL.META_ARCHITECTURE != "ALANet":
        p.error(f"--config-file {args.config_file}: not an ALA-Net config")
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), ()
    predictor = BoneAgePredictor(cfg)
    stream = predictor.predict_files(files, list(labels["male"]), batch_size=args.batch_size)
    pairs = [(x["file_name"], out) for x, out in stream if out is not None]
    data = pseudo_keypoint_json(
        pairs,
        cfg.BONEAGE.ALANET.NUM_ROIS,
        args.min_score,
        description=f"pseudo ROI keypoints of {args.weights} (min score {args.min_score})",
    )
    atomic_write_json(args.output, data)
    visible = sum(a["num_keypoints"] for a in data["annotations"])
    print(f"wrote {args.output}: {len(pairs)} films, {visible} ROI keypoints")
    return 0 if pairs else 1


if __name__ == "__main__":
    sys.exit(main())
