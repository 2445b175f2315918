"""Residual attention network (Wang et al., CVPR 2017), the bone-age regressor of paper A.

Layout (Attention-92 with the paper's six modules; widths and depths are config keys so a CPU
demo can be tiny)::

    stem      conv 7x7/2 + norm + ReLU + max-pool 3x3/2                     stride 4
    stage1    residual unit -> Att1                                         stride 4
    stage2    residual unit /2 -> Att2_1, Att2_2                            stride 8
    stage3    residual unit /2 -> Att3_1, Att3_2, Att3_3                    stride 16
    stage4    residual units (the first /2) -> norm + ReLU                  stride 32

Each attention module (``AttentionModule``) has ``p`` pre-processing residual units, a trunk
branch T of ``t`` residual units, a soft-mask branch M (max-pool/up-sample hourglass with skip
connections ending in two 1x1 convolutions and a sigmoid), the attention residual
``T(x) * (1 + M(x))`` (paper A Eq. 1, Wang et al. Eq. 3) and ``p`` post-processing units. Wang et
al.'s hyper-parameters are ``p = 1, t = 2, r = 1`` and 3 / 2 / 1 down-samplings in the hourglass
of stage 1 / 2 / 3.

Residual units are pre-activation bottlenecks (He et al. 2016, as in Wang et al.). Normalisation
defaults to GroupNorm: the regressor is trained from random initialisation on a handful of hand
crops per iteration, where BatchNorm statistics are noisy; GN does not depend on the batch
(``BONEAGE.RAN.NORM: "BN"`` is available for large-batch GPU training).

The network is usable on its own (``ResidualAttentionNetwork(...)``), from a config, and as a
Detectron2 backbone (``MODEL.BACKBONE.NAME: "build_residual_attention_backbone"``, outputs
``stage1..stage4``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import Tensor, nn

__all__ = [
    "AttentionModule",
    "PreActResidualUnit",
    "ResidualAttentionNetwork",
    "SoftMaskBranch",
    "attention_maps_from_logits",
    "attention_residual",
    "build_residual_attention_backbone",
    "ran_norm",
]

STAGE_NAMES = ("stage1", "stage2", "stage3", "stage4")
STAGE_STRIDES = (4, 8, 16, 32)
NORMS = ("GN", "BN", "")
GN_MAX_GROUPS = 32  # Wu & He 2018; fewer groups when the width is not a multiple of 32


def ran_norm(norm: str, channels: int) -> nn.Module:
    """Normalisation layer for ``channels`` features: "GN", "BN", or "" (none).

    GN uses the largest power-of-two number of groups <= 32 that leaves at least 2 channels per
    group, so tiny widths work and a 1x1 map (the bottom of an hourglass on a small input) still
    has 2 values per group to normalise.
    """
    if norm == "GN":
        return nn.GroupNorm(math.gcd(GN_MAX_GROUPS, max(channels // 2, 1)), channels)
    if norm == "BN":
        return nn.BatchNorm2d(channels)
    if norm == "":
        return nn.Identity()
    raise ValueError(f"BONEAGE.RAN.NORM={norm!r}; expected one of {NORMS}")


def attention_residual(trunk: Tensor, mask_logits: Tensor) -> Tensor:
    """Attention residual learning, ``T(x) * (1 + M(x))`` with ``M = sigmoid(mask_logits)``.

    Paper A Eq. 1 / Wang et al. Eq. 3. Both inputs are [N, C, H, W]; so is the output.
    """
    return trunk * (1.0 + torch.sigmoid(mask_logits))


class PreActResidualUnit(nn.Module):
    """Pre-activation bottleneck residual unit: (norm-ReLU-conv) x 3, 1x1 -> 3x3 -> 1x1.

    [N, in_channels, H, W] -> [N, out_channels, ceil(H / stride), ceil(W / stride)]; a 1x1
    projection shortcut when the width or the stride changes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, norm: str = "GN"):
        super().__init__()
        mid = max(out_channels // 4, 1)
        self.norm1 = ran_norm(norm, in_channels)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2 = ran_norm(norm, mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.norm3 = ran_norm(norm, mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.shortcut = None
        if in_channels != out_channels or stride != 1:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        a = F.relu(self.norm1(x))
        skip = x if self.shortcut is None else self.shortcut(a)
        y = self.conv1(a)
        y = self.conv2(F.relu(self.norm2(y)))
        y = self.conv3(F.relu(self.norm3(y)))
        return y + skip


def _units(channels: int, count: int, norm: str) -> nn.Sequential:
    return nn.Sequential(*[PreActResidualUnit(channels, channels, norm=norm) for _ in range(count)])


class _HourglassLevel(nn.Module):
    """One level of the soft-mask hourglass: max-pool, ``r`` units, (deeper level + skip unit,
    ``r`` units), bilinear up-sampling back to the input's exact size (any, odd included)."""

    def __init__(self, channels: int, depth: int, num_units: int, norm: str):
        super().__init__()
        self.down = _units(channels, num_units, norm)
        if depth > 1:
            self.skip = PreActResidualUnit(channels, channels, norm=norm)
            self.inner = _HourglassLevel(channels, depth - 1, num_units, norm)
            self.up = _units(channels, num_units, norm)
        else:  # the bottom: Wang et al. use 2r units at the lowest resolution
            self.skip = self.inner = None
            self.up = _units(channels, num_units, norm)

    def forward(self, x: Tensor) -> Tensor:
        y = self.down(F.max_pool2d(x, kernel_size=3, stride=2, padding=1))
        if self.inner is not None:
            y = self.inner(y) + self.skip(y)
        y = self.up(y)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class SoftMaskBranch(nn.Module):
    """Soft-mask branch M: bottom-up/top-down hourglass with ``num_downsamples`` max-poolings and
    a skip connection at every level but the lowest, then norm-ReLU-1x1-norm-ReLU-1x1.

    Returns the pre-sigmoid mask logits [N, C, H, W], the same shape as the input (the maps of
    paper A Fig. 3 are taken "from before the sigmoid").
    """

    def __init__(self, channels: int, num_downsamples: int, num_units: int = 1, norm: str = "GN"):
        super().__init__()
        if num_downsamples < 1:
            raise ValueError(
                f"the soft-mask branch needs >= 1 down-sampling, got {num_downsamples}"
            )
        self.hourglass = _HourglassLevel(channels, num_downsamples, num_units, norm)
        self.head = nn.Sequential(
            ran_norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1, bias=False),
            ran_norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.hourglass(x))


class AttentionModule(nn.Module):
    """Wang et al.'s attention module: ``post(T(x') * (1 + sigmoid(M(x'))))`` with ``x' = pre(x)``.

    ``pre``/``post``: ``p`` residual units; ``trunk``: ``t`` residual units; ``mask``: a
    ``SoftMaskBranch`` with ``num_downsamples`` poolings and ``r`` units per level.
    ``forward`` returns ``(output [N, C, H, W], pre-sigmoid mask logits [N, C, H, W])``.
    """

    def __init__(
        self,
        channels: int,
        num_downsamples: int,
        *,
        pre_post_units: int = 1,
        trunk_units: int = 2,
        mask_units: int = 1,
        norm: str = "GN",
    ):
        super().__init__()
        self.pre = _units(channels, pre_post_units, norm)
        self.trunk = _units(channels, trunk_units, norm)
        self.mask = SoftMaskBranch(channels, num_downsamples, mask_units, norm)
        self.post = _units(channels, pre_post_units, norm)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pre(x)
        mask_logits = self.mask(x)
        return self.post(attention_residual(self.trunk(x), mask_logits)), mask_logits


def attention_maps_from_logits(logits: Tensor) -> Tensor:
    """One map per image from a module's pre-sigmoid mask logits: [N, C, H, W] -> [N, H, W], the
    mean over channels (the per-module heatmaps of paper A Fig. 3)."""
    return logits.mean(dim=1)


def _module_names(modules_per_stage: tuple[int, ...]) -> list[list[str]]:
    """Paper A's names: a stage with one module has ``Att<s>``, else ``Att<s>_<k>``."""
    return [
        [f"Att{s}"] if n == 1 else [f"Att{s}_{k}" for k in range(1, n + 1)]
        for s, n in enumerate(modules_per_stage, start=1)
    ]


class ResidualAttentionNetwork(Backbone):
    """Residual attention network (Wang et al. 2017) as a Detectron2 ``Backbone``.

    Input: a normalised image batch [N, in_channels, H, W], any H and W (odd sizes included:
    the hourglass up-samples to the exact size of each skip connection). ``forward`` returns the
    ``out_features`` among ``stage1..stage4`` (strides 4, 8, 16, 32); ``forward_with_attention``
    also returns every attention module's pre-sigmoid mask logits, keyed ``Att1``, ``Att2_1``, ...
    """

    @configurable
    def __init__(
        self,
        *,
        in_channels: int = 3,
        stem_channels: int = 64,
        stage_channels: tuple[int, int, int] = (256, 512, 1024),
        out_channels: int = 2048,
        modules_per_stage: tuple[int, int, int] = (1, 2, 3),
        mask_downsamples: tuple[int, int, int] = (3, 2, 1),
        num_final_units: int = 3,
        pre_post_units: int = 1,
        trunk_units: int = 2,
        mask_units: int = 1,
        norm: str = "GN",
        zero_init_residual: bool = False,
        out_features: tuple[str, ...] = ("stage4",),
    ):
        super().__init__()
        if not (len(stage_channels) == len(modules_per_stage) == len(mask_downsamples) == 3):
            raise ValueError(
                "BONEAGE.RAN.STAGE_CHANNELS, MODULES_PER_STAGE and MASK_DOWNSAMPLES need 3 "
                f"entries each; got {stage_channels}, {modules_per_stage}, {mask_downsamples}"
            )
        unknown = [f for f in out_features if f not in STAGE_NAMES]
        if unknown or not out_features:
            raise ValueError(
                f"BONEAGE.RAN.OUT_FEATURES={out_features}; expected names in {STAGE_NAMES}"
            )
        if num_final_units < 1:
            raise ValueError(f"BONEAGE.RAN.NUM_FINAL_UNITS must be >= 1, got {num_final_units}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False),
            ran_norm(norm, stem_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.module_names = _module_names(tuple(modules_per_stage))
        self.transitions = nn.ModuleList()
        self.attention = nn.ModuleDict()
        prev = stem_channels
        for s, (ch, depth, names) in enumerate(
            zip(stage_channels, mask_downsamples, self.module_names)
        ):
            self.transitions.append(
                PreActResidualUnit(prev, ch, stride=1 if s == 0 else 2, norm=norm)
            )
            for name in names:
                self.attention[name] = AttentionModule(
                    ch,
                    depth,
                    pre_post_units=pre_post_units,
                    trunk_units=trunk_units,
                    mask_units=mask_units,
                    norm=norm,
                )
            prev = ch
        self.final = nn.Sequential(
            PreActResidualUnit(prev, out_channels, stride=2, norm=norm),
            *[
                PreActResidualUnit(out_channels, out_channels, norm=norm)
                for _ in range(num_final_units - 1)
            ],
            ran_norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )
        channels = (*stage_channels, out_channels)
        self._out_features = list(out_features)
        self._out_feature_channels = dict(zip(STAGE_NAMES, channels))
        self._out_feature_strides = dict(zip(STAGE_NAMES, STAGE_STRIDES))
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if zero_init_residual:  # identity units start as the identity (Goyal et al. 2017)
            for m in self.modules():
                if isinstance(m, PreActResidualUnit) and m.shortcut is None:
                    nn.init.zeros_(m.conv3.weight)

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec | None = None) -> dict:
        c = cfg.BONEAGE.RAN
        return {
            "in_channels": input_shape.channels if input_shape else len(cfg.MODEL.PIXEL_MEAN),
            "stem_channels": c.STEM_CHANNELS,
            "stage_channels": tuple(c.STAGE_CHANNELS),
            "out_channels": c.OUT_CHANNELS,
            "modules_per_stage": tuple(c.MODULES_PER_STAGE),
            "mask_downsamples": tuple(c.MASK_DOWNSAMPLES),
            "num_final_units": c.NUM_FINAL_UNITS,
            "pre_post_units": c.PRE_POST_UNITS,
            "trunk_units": c.TRUNK_UNITS,
            "mask_units": c.MASK_UNITS,
            "norm": c.NORM,
            "zero_init_residual": c.ZERO_INIT_RESIDUAL,
            "out_features": tuple(c.OUT_FEATURES),
        }

    @property
    def attention_module_names(self) -> list[str]:
        """Names of the attention modules in forward order (``Att1``, ``Att2_1``, ...)."""
        return [n for names in self.module_names for n in names]

    def forward_with_attention(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``x`` [N, C, H, W] -> (``{stage: feature}`` for the out features, ``{module name:
        pre-sigmoid mask logits [N, C_stage, H_stage, W_stage]}``)."""
        stages: dict[str, Tensor] = {}
        logits: dict[str, Tensor] = {}
        x = self.stem(x)
        for stage, transition, names in zip(STAGE_NAMES, self.transitions, self.module_names):
            x = transition(x)
            for name in names:
                x, logits[name] = self.attention[name](x)
            stages[stage] = x
        stages["stage4"] = self.final(x)
        return {k: stages[k] for k in self._out_features}, logits

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x`` [N, C, H, W] -> ``{name: feature}`` for ``out_features`` (Backbone contract)."""
        return self.forward_with_attention(x)[0]


@BACKBONE_REGISTRY.register()
def build_residual_attention_backbone(cfg, input_shape: ShapeSpec) -> ResidualAttentionNetwork:
    """``MODEL.BACKBONE.NAME: "build_residual_attention_backbone"``: the network of
    ``cfg.BONEAGE.RAN``, outputs ``cfg.BONEAGE.RAN.OUT_FEATURES``."""
    return ResidualAttentionNetwork(cfg, input_shape)
