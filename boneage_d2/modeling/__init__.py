"""Models: importing this module registers every architecture and head."""

from .age_head import AGE_HEAD_REGISTRY, OrdinalAgeHead, RegressionAgeHead, build_age_head
from .alanet import ALANet
from .anatomical_roi_heads import AnatomicalROIHeads
from .anatomical_rpn import AnatomicalRPN
from .efficientnet_lite import EfficientNetLite, EfficientNetLiteClassifier
from .gender import GenderEmbedding
from .global_regressor import GlobalBoneAgeRegressor
from .handseg_rcnn import HandSegBoneAgeRCNN
from .residual_attention import ResidualAttentionNetwork

__all__ = [
    "ALANet",
    "AnatomicalROIHeads",
    "AnatomicalRPN",
    "AGE_HEAD_REGISTRY",
    "OrdinalAgeHead",
    "RegressionAgeHead",
    "build_age_head",
    "EfficientNetLite",
    "EfficientNetLiteClassifier",
    "GenderEmbedding",
    "GlobalBoneAgeRegressor",
    "HandSegBoneAgeRCNN",
    "ResidualAttentionNetwork",
]
