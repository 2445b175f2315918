"""Users' own ImageNet weights: a torchvision ResNet checkpoint in Detectron2's format.

torchvision and Detectron2 name ResNet's tensors differently (``layer1.0.bn1`` vs
``res2.0.conv1.norm``), put the stride of a bottleneck in its 3x3 conv (Detectron2's MSRA
weights put it in the 1x1: ``RESNETS.STRIDE_IN_1X1``), and read RGB in [0, 1] normalised by the
ImageNet mean/std, while Detectron2's inputs are 0-255 in ``INPUT.FORMAT`` order. The converter
renames every tensor, flips the stem's input channels to BGR (Detectron2's default format), and
returns the settings under which Detectron2's ResNet computes exactly torchvision's features.
"""

from __future__ import annotations

import re

import numpy as np
import torch

__all__ = ["TorchvisionResNetError", "convert_torchvision_resnet", "resnet_depth"]

# torchvision's ImageNet normalisation (RGB, 0-1 units) in Detectron2's BGR, 0-255 units.
PIXEL_MEAN_BGR = [0.406 * 255, 0.456 * 255, 0.485 * 255]
PIXEL_STD_BGR = [0.225 * 255, 0.224 * 255, 0.229 * 255]
# blocks per stage (layer1..4) -> depth, for basic blocks and bottlenecks
_DEPTHS = {
    ("basic", (2, 2, 2, 2)): 18,
    ("basic", (3, 4, 6, 3)): 34,
    ("bottleneck", (3, 4, 6, 3)): 50,
    ("bottleneck", (3, 4, 23, 3)): 101,
    ("bottleneck", (3, 8, 36, 3)): 152,
}


class TorchvisionResNetError(ValueError):
    """The checkpoint is not a torchvision ResNet state dict; the message says what is off."""


def _plain_state_dict(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The tensors of a torchvision checkpoint: a state dict, or one under ``state_dict`` /
    ``model``, with a DataParallel ``module.`` prefix removed."""
    for key in ("state_dict", "model"):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    return {
        re.sub(r"^module\.", "", k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)
    }


def resnet_depth(state: dict[str, torch.Tensor]) -> int:
    """ResNet depth (18, 34, 50, 101, 152) from a torchvision state dict's block layout."""
    blocks = []
    for stage in range(1, 5):
        ids = {int(m.group(1)) for k in state if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        blocks.append(len(ids))
    kind = "bottleneck" if any(".conv3." in k for k in state) else "basic"
    depth = _DEPTHS.get((kind, tuple(blocks)))
    if depth is None:
        raise TorchvisionResNetError(
            f"not a torchvision ResNet: {kind} blocks per stage {blocks}; expected one of "
            f"{sorted(set(_DEPTHS.values()))} (conv1, bn1, layer1..layer4, fc)"
        )
    return depth


def _detectron2_name(name: str) -> str | None:
    """Detectron2's backbone-relative name of a torchvision tensor (layer1 -> res2, bnK ->
    convK.norm, downsample -> shortcut); None for the classifier and BatchNorm counters."""
    if name.startswith("fc.") or name.endswith("num_batches_tracked"):
        return None
    if m := re.match(r"^layer(\d)\.(\d+)\.(conv|bn)(\d)(\.\w+)$", name):
        stage, block, kind, idx, tail = m.groups()
        prefix = f"res{int(stage) + 1}.{block}.conv{idx}"
        return prefix + (tail if kind == "conv" else ".norm" + tail)
    if m := re.match(r"^layer(\d)\.(\d+)\.downsample\.(0|1)(\.\w+)$", name):
        stage, block, idx, tail = m.groups()
        prefix = f"res{int(stage) + 1}.{block}.shortcut"
        return prefix + (tail if idx == "0" else ".norm" + tail)
    if name == "conv1.weight":
        return "stem.conv1.weight"
    if name.startswith("bn1."):
        return "stem.conv1.norm." + name[len("bn1.") :]
    raise TorchvisionResNetError(f"tensor {name!r} is not part of a torchvision ResNet")


def convert_torchvision_resnet(checkpoint: dict) -> tuple[dict, dict]:
    """A torchvision ResNet checkpoint -> (Detectron2 model-zoo checkpoint, config settings).

    The checkpoint dict has ``model`` (numpy arrays under Detectron2's backbone-relative names,
    stem channels in BGR order), ``__author__`` and ``matching_heuristics`` (so
    ``DetectionCheckpointer`` finds ``backbone.`` / ``backbone.bottom_up.`` prefixes itself).
    The settings are ``{"MODEL.RESNETS.DEPTH": ..., ...}``: the keys under which Detectron2's
    ResNet reproduces torchvision's features (no stride in the 1x1 conv, FrozenBN, BGR input with
    torchvision's mean/std in 0-255 units). The classifier ``fc`` is dropped.
    """
    state = _plain_state_dict(checkpoint)
    if "conv1.weight" not in state:
        raise TorchvisionResNetError(
            f"no 'conv1.weight' among the checkpoint's {len(state)} tensors: not a torchvision "
            "ResNet state dict"
        )
    depth = resnet_depth(state)
    model = {}
    for name, tensor in state.items():
        new = _detectron2_name(name)
        if new is None:
            continue
        value = tensor.detach().cpu().float()
        if new == "stem.conv1.weight":
            value = value[:, [2, 1, 0]]  # RGB -> BGR input channels
        model[new] = np.ascontiguousarray(value.numpy())
    settings = {
        "MODEL.RESNETS.DEPTH": depth,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": 64 if depth < 50 else 256,
        "MODEL.RESNETS.STRIDE_IN_1X1": False,
        "MODEL.RESNETS.NORM": "FrozenBN",
        "INPUT.FORMAT": "BGR",
        "MODEL.PIXEL_MEAN": list(PIXEL_MEAN_BGR),
        "MODEL.PIXEL_STD": list(PIXEL_STD_BGR),
    }
    out = {
        "model": model,
        "__author__": f"torchvision ResNet-{depth}, converted by boneage_d2",
        "matching_heuristics": True,
    }
    return out, settings
