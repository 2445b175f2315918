"""Backbones section: each EfficientNet-Lite against Detectron2's ResNet-18 and ResNet-50.

Bare backbones (random weights, eval mode, ``res5`` only, plain BatchNorm) run on the same random
square input under ``torch.inference_mode``, all interleaved in one set of rounds; each Lite's
median is divided by each ResNet's. Lite runs channels-last, as the configs do; one extra row
shows lite0 channels-first (the layout's effect).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any

from .settings import Settings, load_cfg
from .timing import attempt, autocast, device_sync, fmt_s, log, precisions, time_interleaved

__all__ = ["LITE_BACKBONES", "RESNET_DEPTHS", "bench_backbones", "build_lite", "build_resnet"]

# (variant, channels_last) of the timed Lite backbones
LITE_BACKBONES = (("lite0", True), ("lite1", True), ("lite2", True), ("lite0", False))
RESNET_DEPTHS = (18, 50)
_PLAIN_BN = ["MODEL.BACKBONE.FREEZE_AT", 0]  # no stage frozen: the same norm in every network


def build_resnet(depth: int, device: str) -> Any:
    """Detectron2's ResNet-``depth`` backbone (BN, ``res5`` only), random weights, eval mode."""
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import build_resnet_backbone

    opts = [
        "MODEL.RESNETS.DEPTH", depth,
        "MODEL.RESNETS.RES2_OUT_CHANNELS", 64 if depth < 50 else 256,
        "MODEL.RESNETS.NORM", "BN",
        "MODEL.RESNETS.OUT_FEATURES", ["res5"],
        *_PLAIN_BN,
    ]  # fmt: skip
    cfg = load_cfg(None, device, opts)
    return build_resnet_backbone(cfg, ShapeSpec(channels=3)).to(device).eval()


def build_lite(variant: str, channels_last: bool, device: str) -> Any:
    """``build_efficientnet_lite_backbone`` (``res5`` only), random weights, eval mode."""
    from detectron2.layers import ShapeSpec

    from boneage_d2.modeling.efficientnet_lite import build_efficientnet_lite_backbone

    opts = [
        "BONEAGE.EFFICIENTNET.VARIANT", variant,
        "BONEAGE.EFFICIENTNET.PRETRAINED", False,
        "BONEAGE.EFFICIENTNET.NORM", "BN",
        "BONEAGE.EFFICIENTNET.OUT_FEATURES", ["res5"],
        "BONEAGE.EFFICIENTNET.CHANNELS_LAST", channels_last,
        *_PLAIN_BN,
    ]  # fmt: skip
    cfg = load_cfg(None, device, opts)
    return build_efficientnet_lite_backbone(cfg, ShapeSpec(channels=3)).to(device).eval()


def _lite_name(variant: str, channels_last: bool) -> str:
    return variant if channels_last else f"{variant} channels-first"


def _build_all(device: str) -> dict[str, Any]:
    """``{"nets": {name: backbone}}``: the ResNets (``R18``, ``R50``) and every Lite."""
    import torch

    torch.manual_seed(0)
    nets = {f"R{d}": build_resnet(d, device) for d in RESNET_DEPTHS}
    nets.update({_lite_name(*v): build_lite(*v, device) for v in LITE_BACKBONES})
    return {"nets": nets}


def _time_all(
    nets: dict[str, Any], size: int, batch: int, device: str, precision: str, s: Settings
) -> dict[str, Any]:
    """``{"times": {name: seconds per round}}`` of every network on one random input."""
    import torch

    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = x.to(device)
    calls = {name: (lambda net=net: net(x)) for name, net in nets.items()}
    with torch.inference_mode(), autocast(device, precision):
        times = time_interleaved(
            calls, s.warmup, s.repeats, sync=device_sync(device), budget_s=s.budget_s
        )
    return {"times": times}


def _ratios(name: str, times: dict[str, list[float]]) -> dict[str, Any]:
    """Medians of ``name`` and the ResNets, and its ratios to them."""
    lite_s, r18_s, r50_s = (statistics.median(times[k]) for k in (name, "R18", "R50"))
    log(f"  {name}: {fmt_s(lite_s)}, {lite_s / r18_s:.2f}x R18, {lite_s / r50_s:.2f}x R50")
    return {
        "repeats": len(times[name]),
        "model_s": lite_s,
        "r18_s": r18_s,
        "r50_s": r50_s,
        "ratio_r18": lite_s / r18_s,
        "ratio_r50": lite_s / r50_s,
        "model_samples_s": times[name],
    }


def _rows(timed: dict[str, Any], device: str, precision: str, size: int, batch: int) -> list[dict]:
    """One row per Lite backbone from ``_time_all``'s result (or its ``"error"``)."""
    import torch

    rows = []
    for variant, channels_last in LITE_BACKBONES:
        name = _lite_name(variant, channels_last)
        row = {
            "case": f"EfficientNet-{name} ({device} {precision}, {size} px, batch {batch})",
            "variant": variant,
            "channels_last": channels_last,
            "device": device,
            "precision": precision,
            "size": size,
            "batch": batch,
            "threads": torch.get_num_threads(),
        }
        row.update(_ratios(name, timed["times"]) if "times" in timed else timed)
        rows.append(row)
    return rows


def bench_backbones(devices: Sequence[str], s: Settings) -> list[dict]:
    """One row per Lite backbone, device, precision, input size and batch: its median seconds
    and its ratios to ResNet-18 and ResNet-50 (``ratio_r18``, ``ratio_r50``), or ``"error"``."""
    rows = []
    for device in devices:
        built = attempt({}, _build_all, device)
        grid = itertools.product(precisions(device), s.backbone_sizes, s.batches)
        for precision, size, batch in grid:
            log(f"backbones: Lite vs ResNet, {device} {precision}, {size} px, batch {batch} ...")
            timed = built
            if "nets" in built:
                timed = attempt({}, _time_all, built["nets"], size, batch, device, precision, s)
            rows += _rows(timed, device, precision, size, batch)
    return rows
