from .config_checks import ConfigError, load_config, load_inference_config, validate_config
from .predictor import BoneAgePredictor
from .trainer import BoneAgeTrainer, build_boneage_optimizer, training_mean_months

__all__ = [
    "BoneAgePredictor",
    "BoneAgeTrainer",
    "ConfigError",
    "build_boneage_optimizer",
    "load_config",
    "load_inference_config",
    "training_mean_months",
    "validate_config",
]
