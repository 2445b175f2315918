"""Models: importing this module registers every architecture and head."""

from .age_head import AGE_HEAD_REGISTRY, OrdinalAgeHead, RegressionAgeHead, build_age_head
from .gender import GenderEmbedding
from .global_regressor import GlobalBoneAgeRegressor

__all__ = [
    "AGE_HEAD_REGISTRY",
    "OrdinalAgeHead",
    "RegressionAgeHead",
    "build_age_head",
    "GenderEmbedding",
    "GlobalBoneAgeRegressor",
]
