#!/usr/bin/env python
"""Convert a torchvision ResNet checkpoint (your own ImageNet weights) to Detectron2's format.

    python tools/convert_torchvision_resnet.py --input resnet50-0676ba61.pth \\
        --output weights/R-50-torchvision.pkl

Writes the ``.pkl`` (Detectron2 model-zoo format: names matched to any model holding a ResNet
backbone, stem in BGR order) and, beside it, ``<output>.yaml``: the config keys under which
Detectron2's ResNet computes torchvision's features (depth, ``STRIDE_IN_1X1: False``,
``FrozenBN``, torchvision's pixel mean/std in 0-255 BGR) plus ``MODEL.WEIGHTS``. Merge it after
your config (``--config-file configs/ALA-Net/paper.yaml`` then these keys as opts, or copy them
into a yaml of yours). Exit status 2 on bad input, with one ``error:`` line.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import yaml


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--input", required=True, help="torchvision ResNet checkpoint (.pth)")
    p.add_argument("--output", required=True, help="Detectron2 checkpoint to write (.pkl)")
    return p


def nested(settings: dict) -> dict:
    """``{"MODEL.RESNETS.DEPTH": 50}`` -> ``{"MODEL": {"RESNETS": {"DEPTH": 50}}}``."""
    out: dict = {}
    for key, value in settings.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    src, dst = Path(args.input), Path(args.output)
    if not src.is_file():
        print(f"error: {src}: file not found", file=sys.stderr)
        return 2
    if dst.suffix != ".pkl":
        print(f"error: --output {dst}: expected a .pkl file (Detectron2's format)", file=sys.stderr)
        return 2
    import torch

    from boneage_d2.io.atomic import atomic_open
    from boneage_d2.modeling.torchvision_weights import (
        TorchvisionResNetError,
        convert_torchvision_resnet,
    )

    try:
        checkpoint = torch.load(src, map_location="cpu", weights_only=True)
        converted, settings = convert_torchvision_resnet(checkpoint)
    except (TorchvisionResNetError, pickle.UnpicklingError, RuntimeError, AttributeError) as e:
        print(f"error: {src}: {e}", file=sys.stderr)
        return 2
    dst.parent.mkdir(parents=True, exist_ok=True)
    settings["MODEL.WEIGHTS"] = str(dst)
    with atomic_open(dst, "wb") as f:
        pickle.dump(converted, f)
    config = dst.with_suffix(".yaml")
    with atomic_open(config, "w", encoding="utf-8") as f:
        f.write(f"# Settings for {dst.name} (converted from {src.name} by {Path(__file__).name})\n")
        yaml.safe_dump(nested(settings), f, sort_keys=False)
    print(
        f"wrote {dst} ({len(converted['model'])} tensors, {converted['__author__']}) and {config}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
