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
from detectron2.engine import hooks as d2_hooks
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils import comm

from ..data.catalog import prepare_task_view
from ..data.mapper import BoneAgeDatasetMapper
from ..evaluation import BoneAgeEvaluator
from ..utils.provenance import Provenance, collect_provenance
from .hooks import ReduceLROnPlateau

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

    def __init__(self, cfg):
        super().__init__(cfg)
        # Every checkpoint carries the package version, git revision, config and data hashes.
        self.provenance = Provenance(collect_provenance(cfg))
        self.checkpointer.add_checkpointable("provenance", self.provenance)
        if comm.is_main_process():
            self.provenance.write(os.path.join(cfg.OUTPUT_DIR, "provenance.json"))

    def train(self):
        """Run training; return the last evaluation's results (``None`` if none ran)."""
        super().train()
        return getattr(self, "_last_eval_results", None)

    def build_hooks(self):
        """Detectron2's hooks, plus ``ReduceLROnPlateau`` right after ``EvalHook`` when
        ``BONEAGE.SOLVER.PLATEAU.ENABLED``. The ``PeriodicCheckpointer`` then moves after it, so
        a checkpoint written at an evaluation iteration holds that evaluation's LR decision
        (Detectron2 checkpoints before evaluating; a resume would lose the reduction)."""
        ret = super().build_hooks()
        if not self.cfg.BONEAGE.SOLVER.PLATEAU.ENABLED:
            return ret
        plateau = ReduceLROnPlateau.from_config(self.cfg)
        ret.insert(
            next(i for i, h in enumerate(ret) if isinstance(h, d2_hooks.EvalHook)) + 1, plateau
        )
        for h in [h for h in ret if isinstance(h, d2_hooks.PeriodicCheckpointer)]:
            ret.remove(h)
            ret.insert(ret.index(plateau) + 1, h)
        return ret

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
