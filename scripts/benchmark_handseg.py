#!/usr/bin/env python
"""Inference cost of Model A (HandSegBoneAgeRCNN) against a plain Mask R-CNN, batch 1, CPU.

Both models are built from the same config (the plain one with META_ARCHITECTURE
GeneralizedRCNN) and share the detector weights, so they find the same detections and the ratio
is the cost of the bone-age branch (mask gating, crops, residual attention network). Runs are
interleaved (A, B, A, B, ...) so a machine shared with other jobs slows both alike; the medians
and their ratio are printed.

    python scripts/benchmark_handseg.py                                  # paper.yaml, 512 px
    python scripts/benchmark_handseg.py --config-file configs/HandSeg-RAN/R18-phantom-demo.yaml \
        --weights output/handseg_ran_r18_demo/model_final.pth --dataset phantom_boneage_val
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
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


def _synthetic_inputs(long_side: int, count: int) -> list[dict]:
    """Bright hand-like blobs on a dark background, 4:3 portrait, uint8 [3, H, W]."""
    import torch

    h, w = long_side, int(long_side * 0.78)
    inputs = []
    for i in range(count):
        g = torch.Generator().manual_seed(i)
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        blob = ((xx - w / 2) / (w / 3)) ** 2 + ((yy - h / 2) / (h / 2.4)) ** 2 <= 1
        img = 20 + 150 * blob.float() + 20 * torch.rand((h, w), generator=g)
        inputs.append(
            {
                "image": img.clamp(0, 255).to(torch.uint8).expand(3, h, w).clone(),
                "male": i % 2 == 0,
                "height": h,
                "width": w,
            }
        )
    return inputs


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
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
    plain_cfg = cfg.clone()
    plain_cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
    plain = build_model(plain_cfg).eval()
    missing = plain.load_state_dict(model_a.state_dict(), strict=False).missing_keys
    if missing:
        sys.exit(f"plain Mask R-CNN weights missing from Model A: {missing[:5]}")

    if args.dataset:
        mapper = BoneAgeDatasetMapper(cfg, is_train=False)
        inputs = [mapper(r) for r in DatasetCatalog.get(args.dataset)[: args.images]]
    else:
        inputs = _synthetic_inputs(cfg.BONEAGE.INPUT.LONG_SIDE_TEST, args.images)

    times = {"plain": [], "model_a": []}
    crops = []
    with torch.no_grad():
        for i in range(args.warmup + args.reps):
            x = inputs[i % len(inputs)]
            for name, model in (("plain", plain), ("model_a", model_a)):
                start = time.perf_counter()
                out = model([x])[0]
                if i >= args.warmup:
                    times[name].append(time.perf_counter() - start)
                if name == "model_a" and i >= args.warmup:
                    crops.append(max(int(torch.isfinite(out["instances"].boneage).sum()), 1))
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
