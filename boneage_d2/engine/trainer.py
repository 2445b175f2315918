"""``BoneAgeTrainer``: ``DefaultTrainer`` with our mapper, optimisers and evaluators."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from detectron2.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
)
from detectron2.engine import DefaultTrainer
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

from ..data.catalog import prepare_task_view
from ..data.mapper import BoneAgeDatasetMapper
from ..evaluation import BoneAgeEvaluator

__all__ = ["BoneAgeTrainer", "training_mean_months", "build_boneage_optimizer"]

logger = logging.getLogger(__name__)

OPTIMIZERS = {"SGD": None, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
DETECTION_TASKS = {"hand": ("bbox", "segm"), "roi": ("bbox",)}


def training_mean_months(cfg) -> float | None:
    """Mean label of the training sets (the mean predictor every table reports beside a model)."""
    ages = [
        r["boneage"]
        for name in cfg.DATASETS.TRAIN
        for r in DatasetCatalog.get(name)
        if r.get("boneage") is not None
    ]
    return float(np.mean(ages)) if ages else None


def build_boneage_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """``BONEAGE.SOLVER.OPTIMIZER``: Detectron2's SGD (momentum, ``SOLVER.NESTEROV``), or Adam /
    AdamW with the same per-parameter weight-decay rules and gradient clipping."""
    name = cfg.BONEAGE.SOLVER.OPTIMIZER
    if name not in OPTIMIZERS:
        raise ValueError(f"BONEAGE.SOLVER.OPTIMIZER={name!r}; expected one of {sorted(OPTIMIZERS)}")
    if name == "SGD":
        return DefaultTrainer.build_optimizer(cfg, model)
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )
    return maybe_add_gradient_clipping(cfg, OPTIMIZERS[name])(params, lr=cfg.SOLVER.BASE_LR)


class BoneAgeTrainer(DefaultTrainer):
    """``DefaultTrainer`` with the bone-age mapper, Adam/AdamW, and bone-age + COCO evaluation."""

    def train(self):
        """Run training; return the last evaluation's results (``None`` if none ran)."""
        super().train()
        return getattr(self, "_last_eval_results", None)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_boneage_optimizer(cfg, model)

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, mapper=BoneAgeDatasetMapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(
            cfg, dataset_name, mapper=BoneAgeDatasetMapper(cfg, is_train=False)
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        """``BoneAgeEvaluator`` on the split, plus ``COCOEvaluator`` on its detection task view
        (``BONEAGE.EVAL.DETECTION_VIEW``: hand boxes/masks or ROI boxes) when the model has one."""
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        evaluators = [
            BoneAgeEvaluator(
                dataset_name,
                output_folder,
                train_mean_months=training_mean_months(cfg),
                age_bands=tuple(cfg.BONEAGE.EVAL.AGE_BANDS_MONTHS),
                bootstrap_samples=cfg.BONEAGE.EVAL.BOOTSTRAP_SAMPLES,
            )
        ]
        view = cfg.BONEAGE.EVAL.DETECTION_VIEW
        if view:
            if view not in DETECTION_TASKS:
                raise ValueError(
                    f"BONEAGE.EVAL.DETECTION_VIEW={view!r}; expected '', 'hand' or 'roi'"
                )
            prepare_task_view(MetadataCatalog.get(dataset_name).boneage_json, view)
            evaluators.append(
                COCOEvaluator(
                    f"{dataset_name}_{view}",
                    tasks=DETECTION_TASKS[view],
                    output_dir=os.path.join(output_folder, view),
                )
            )
        return DatasetEvaluators(evaluators)
