from .boneage_evaluator import PREDICTIONS_CSV, BoneAgeEvaluator
from .metrics import beats_mean_predictor, boneage_metrics

__all__ = ["BoneAgeEvaluator", "PREDICTIONS_CSV", "beats_mean_predictor", "boneage_metrics"]
