from .boneage_evaluator import PREDICTIONS_CSV, BoneAgeEvaluator
from .metrics import boneage_metrics

__all__ = ["BoneAgeEvaluator", "PREDICTIONS_CSV", "boneage_metrics"]
