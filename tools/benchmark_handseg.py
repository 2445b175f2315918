#!/usr/bin/env python
"""Inference cost of Model A (HandSegBoneAgeRCNN) against a plain Mask R-CNN, batch 1, CPU.

Both models are built from the same config (the plain one with META_ARCHITECTURE
GeneralizedRCNN) and share the detector weights, so they find the same detections and the ratio
is the cost of the bone-age branch (mask gating, crops, residual attention network). Runs are
interleaved (A B, B A, ...) so a machine shared with other jobs slows both alike; the medians
and their ratio are printed. The measurement is ``boneage_d2.benchmark.compare_handseg``;
``tools/benchmark.py`` runs this comparison at batch 1 and 8 beside the other models, this
command adds trained weights and real images.

    python tools/benchmark_handseg.py                                  # paper.yaml, 512 px
    python tools/benchmark_handseg.py --config-file configs/HandSeg-RAN/R18-phantom-demo.yaml \
        --weights output/handseg_ran_r18_demo/model_final.pth --dataset phantom_boneage_val
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "HandSeg-RAN" / "paper.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked (files exist) before anything heavy is imported."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", default=str(DEFAULT_CONFIG))
    p.add_argument(
        "--weights", default="", help="checkpoint of HandSegBoneAgeRCNN (default: random)"
    )
    p.add_argument(
        "--dataset",
        default="",
        help="registered dataset whose first images are used "
        "(default: a synthetic radiograph-like image at the config's test size)",
    )
    p.add_argument("--images", type=int, default=3, help="distinct images cycled through")
    p.add_argument("--reps", type=int, default=10, help="timed runs per model")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = p.parse_args(argv)
    if args.weights and not Path(args.weights).is_file():
        p.error(f"--weights {args.weights}: file not found")
    if not Path(args.config_file).is_file():
        p.error(f"--config-file {args.config_file}: file not found")
    return args


def main(argv: list[str] | None = None) -> None:
    """Build both models, time them, print the medians and their ratio."""
    args = parse_args(argv)
    import torch

    from boneage_d2.benchmark import (
        compare_handseg,
        dataset_inputs,
        handseg_pair,
        load_cfg,
        synthetic_inputs,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_cfg(args.config_file, "cpu", args.opts)
    try:
        model, plain = handseg_pair(cfg, args.weights)
    except KeyError as e:
        sys.exit(str(e))
    if args.dataset:
        inputs = dataset_inputs(cfg, args.dataset, args.images)
    else:
        inputs = synthetic_inputs(cfg.BONEAGE.INPUT.LONG_SIDE_TEST, args.images)
    r = compare_handseg(model, plain, inputs, args.warmup, args.reps)
    h, w = r["image_hw"]
    print(f"config: {args.config_file}  weights: {args.weights or 'random init'}")
    print(f"input: {h}x{w}, batch 1, {torch.get_num_threads()} threads, {args.reps} runs/model")
    print(
        f"regressor input: {cfg.BONEAGE.RAN.INPUT_SIZE} px, crops per image: "
        f"{r['crops_per_image']:.1f} (max {cfg.BONEAGE.HANDSEG.MAX_HANDS_TEST})"
    )
    print(f"plain Mask R-CNN   median {1000 * r['plain_s']:8.1f} ms")
    print(f"HandSegBoneAgeRCNN median {1000 * r['model_s']:8.1f} ms")
    print(f"ratio {r['ratio']:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
