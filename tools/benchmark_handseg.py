#!/usr/bin/env python
"""Inference cost of Model A (HandSegBoneAgeRCNN) against a plain Mask R-CNN, batch 1, CPU.

Both models are built from the same config (the plain one with META_ARCHITECTURE
GeneralizedRCNN) and share the detector weights, so they find the same detections and the ratio
is the cost of the bone-age branch (mask gating, crops, residual attention network). Runs are
interleaved (A B, B A, ...) so a machine shared with other jobs slows both alike; the medians
and their ratio are printed. The building blocks (``synthetic_inputs``, ``plain_mask_rcnn``,
``time_interleaved``) live in ``boneage_d2.tools.benchmark``, whose ``tools/benchmark.py`` runs
this comparison at batch 1 and 8 beside the other models; this script adds trained weights and
real images.

    python tools/benchmark_handseg.py                                  # paper.yaml, 512 px
    python tools/benchmark_handseg.py --config-file configs/HandSeg-RAN/R18-phantom-demo.yaml \
        --weights output/handseg_ran_r18_demo/model_final.pth --dataset phantom_boneage_val
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "HandSeg-RAN" / "paper.yaml"


def parse_args(argv=None) -> argparse.Namespace:
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


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    from benchmark import plain_mask_rcnn, synthetic_inputs, time_interleaved
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import DatasetCatalog
    from detectron2.modeling import build_model

    import boneage_d2  # noqa: F401  (registers datasets and architectures)
    import boneage_d2.modeling.handseg_rcnn  # noqa: F401
    from boneage_d2.data import BoneAgeDatasetMapper
    from boneage_d2.engine import load_config

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config_file, args.opts + ["MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    model_a = build_model(cfg).eval()
    if args.weights:
        DetectionCheckpointer(model_a).load(args.weights)
    try:
        plain = plain_mask_rcnn(cfg, model_a)
    except KeyError as e:
        sys.exit(str(e))

    if args.dataset:
        mapper = BoneAgeDatasetMapper(cfg, is_train=False)
        inputs = [mapper(r) for r in DatasetCatalog.get(args.dataset)[: args.images]]
    else:
        inputs = synthetic_inputs(cfg.BONEAGE.INPUT.LONG_SIDE_TEST, args.images)

    # One image per round, cycling through the inputs; both models see the same image.
    counter = {"plain": 0, "model_a": 0}
    crops = []

    def run(name: str, model) -> None:
        x = inputs[counter[name] % len(inputs)]
        counter[name] += 1
        out = model([x])[0]
        if name == "model_a":
            crops.append(max(int(torch.isfinite(out["instances"].boneage).sum()), 1))

    with torch.inference_mode():
        times = time_interleaved(
            {"plain": lambda: run("plain", plain), "model_a": lambda: run("model_a", model_a)},
            args.warmup,
            args.reps,
        )
    crops = crops[args.warmup :]
    h, w = inputs[0]["image"].shape[-2:]
    plain_s = statistics.median(times["plain"])
    model_a_s = statistics.median(times["model_a"])
    print(f"config: {args.config_file}  weights: {args.weights or 'random init'}")
    print(f"input: {h}x{w}, batch 1, {torch.get_num_threads()} threads, {args.reps} runs/model")
    print(
        f"regressor input: {cfg.BONEAGE.RAN.INPUT_SIZE} px, crops per image: "
        f"{statistics.mean(crops):.1f} (max {cfg.BONEAGE.HANDSEG.MAX_HANDS_TEST})"
    )
    print(f"plain Mask R-CNN   median {1000 * plain_s:8.1f} ms")
    print(f"HandSegBoneAgeRCNN median {1000 * model_a_s:8.1f} ms")
    print(f"ratio {model_a_s / plain_s:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
