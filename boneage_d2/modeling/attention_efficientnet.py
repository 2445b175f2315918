"""A pretrained trunk carrying residual attention modules: HandSeg-RAN's regressor on ImageNet
features.

Paper A's regressor is a residual attention network (Wang et al. 2017) trained from random
initialisation. This variant keeps its idea, attention residual learning ``T(x) * (1 + M(x))``,
on a pretrained EfficientNet-Lite trunk: after each stage named in ``stages``, a soft-mask branch
(the RAN's own hourglass, ``SoftMaskBranch``) reads the trunk's feature and re-weights it. The
trunk stages play the part of the trunk branch T.

The mask branch's last convolution starts at zero, so every mask starts at ``sigmoid(0) = 0.5``;
the output is divided by that starting factor 1.5, so at initialisation the network computes
exactly the pretrained trunk's features and the masks learn from there:

    out = T(x) * (1 + sigmoid(M(x))) / 1.5

``forward_with_attention`` returns the pooled-feature map and each module's pre-sigmoid logits
(named ``Att_res2``, ...), the contract ``HandSegBoneAgeRCNN`` reads from its regressor.
"""

from __future__ import annotations

from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import Tensor, nn

from .efficientnet_lite import EfficientNetLite, load_packaged_imagenet_weights
from .residual_attention import SoftMaskBranch, attention_residual

__all__ = ["AttentionEfficientNetLite", "build_attention_efficientnet_lite_backbone"]

INITIAL_MASK_GAIN = 1.5  # 1 + sigmoid(0): the attention residual of a zero-initialised mask
OUT_FEATURE = "res5"


class AttentionEfficientNetLite(Backbone):
    """EfficientNet-Lite with a soft-mask attention branch after each of ``stages``.

    Input [N, 3, H, W] normalised as the trunk's weights expect; ``forward`` returns
    ``{"res5": [N, 1280, H/32, W/32]}``.
    """

    @configurable
    def __init__(
        self,
        *,
        trunk: EfficientNetLite,
        stages: tuple[str, ...] = ("res2", "res3", "res4"),
        mask_downsamples: tuple[int, ...] = (2, 2, 1),
        mask_units: int = 1,
        norm: str = "BN",
    ):
        super().__init__()
        if len(stages) != len(mask_downsamples):
            raise ValueError(
                f"BONEAGE.HANDSEG.ATTENTION_STAGES {stages} and MASK_DOWNSAMPLES "
                f"{mask_downsamples} need one entry each"
            )
        channels = trunk._out_feature_channels  # every stage's width
        unknown = [s for s in stages if s not in channels or s == OUT_FEATURE]
        if unknown:
            raise ValueError(
                f"attention stages {unknown}: expected among stem, res2, res3, res4 (the trunk's "
                "stages before the pooled one)"
            )
        self.trunk = trunk
        self.masks = nn.ModuleDict(
            {
                s: SoftMaskBranch(channels[s], d, mask_units, norm)
                for s, d in zip(stages, mask_downsamples)
            }
        )
        for branch in self.masks.values():  # every mask starts at 0.5: the trunk unchanged
            nn.init.zeros_(branch.head[-1].weight)
            nn.init.zeros_(branch.head[-1].bias)
        self._out_features = [OUT_FEATURE]
        self._out_feature_channels = {OUT_FEATURE: channels[OUT_FEATURE]}
        self._out_feature_strides = {OUT_FEATURE: trunk._out_feature_strides[OUT_FEATURE]}

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec | None = None) -> dict:
        args = EfficientNetLite.from_config(cfg, input_shape)
        args["out_features"] = (OUT_FEATURE,)
        trunk = EfficientNetLite(**args)
        if cfg.BONEAGE.EFFICIENTNET.PRETRAINED:
            load_packaged_imagenet_weights(trunk)
        h = cfg.BONEAGE.HANDSEG
        return {
            "trunk": trunk,
            "stages": tuple(h.ATTENTION_STAGES),
            "mask_downsamples": tuple(h.ATTENTION_MASK_DOWNSAMPLES),
            "mask_units": cfg.BONEAGE.RAN.MASK_UNITS,
            "norm": "GN" if cfg.BONEAGE.EFFICIENTNET.NORM == "GN" else "BN",
        }

    @property
    def attention_module_names(self) -> list[str]:
        return [f"Att_{s}" for s in self.masks]

    def forward_with_attention(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``x`` -> (``{"res5": feature}``, ``{"Att_<stage>": pre-sigmoid mask logits}``)."""
        logits: dict[str, Tensor] = {}

        def attend(stage: str, feature: Tensor) -> Tensor:
            if stage not in self.masks:
                return feature
            logits[f"Att_{stage}"] = self.masks[stage](feature)
            return attention_residual(feature, logits[f"Att_{stage}"]) / INITIAL_MASK_GAIN

        return self.trunk.forward_stages(x, attend), logits

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.forward_with_attention(x)[0]


@BACKBONE_REGISTRY.register()
def build_attention_efficientnet_lite_backbone(cfg, input_shape: ShapeSpec):
    """``BONEAGE.HANDSEG.REGRESSOR: "build_attention_efficientnet_lite_backbone"``: the
    EfficientNet-Lite of ``BONEAGE.EFFICIENTNET`` (ImageNet weights when ``PRETRAINED``) with
    attention after ``BONEAGE.HANDSEG.ATTENTION_STAGES``."""
    return AttentionEfficientNetLite(cfg, input_shape)
