"""``BoneAgeTrainer``: ``DefaultTrainer`` with our mapper, optimisers and evaluators, plus the
reliability features of docs/training.md (exact resume, divergence checks, DDP on CPU)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from detectron2.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
)
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer
from detectron2.engine import defaults as d2_defaults
from detectron2.engine import hooks as d2_hooks
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils import comm

from ..data.bad_images import with_skipped_image_metric
from ..data.catalog import prepare_task_view
from ..data.mapper import BoneAgeDatasetMapper
from ..data.roi_sampling import roi_repeat_loader_args
from ..data.transforms import build_boneage_augmentation
from ..evaluation import BoneAgeEvaluator
from ..evaluation.intervals import calibration_for_config
from ..modeling.flip_tta import BoneAgeFlipTTA
from ..utils.provenance import Provenance, collect_provenance
from .config_checks import ConfigError
from .hooks import (
    DivergenceError,
    ExactResume,
    FiniteWeightsCheck,
    ReduceLROnPlateau,
    WeightsEMA,
    check_finite_losses,
)
from .val_loss import ValidationLoss, val_loss_dataset

__all__ = [
    "BoneAgeTrainer",
    "training_mean_months",
    "mean_boneage_months",
    "build_boneage_optimizer",
    "create_ddp_model",
    "configure_determinism",
    "sync_buffers_from_main",
]

logger = logging.getLogger(__name__)

OPTIMIZERS = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
DETECTION_TASKS = {"hand": ("bbox", "segm"), "roi": ("bbox",)}


def mean_boneage_months(names: str | Sequence[str]) -> float | None:
    """Mean label of the registered splits ``names`` (None when none is labelled)."""
    names = [names] if isinstance(names, str) else list(names)
    ages = [
        r["boneage"]
        for name in names
        for r in DatasetCatalog.get(name)
        if r.get("boneage") is not None
    ]
    return float(np.mean(ages)) if ages else None


def training_mean_months(cfg) -> float | None:
    """Mean label of the training sets (the mean predictor every table reports beside a model)."""
    return mean_boneage_months(cfg.DATASETS.TRAIN)


def backbone_lr_factor(factor: float):
    """``lr_factor_func`` for Detectron2's optimizer params: ``factor`` for the parameters of the
    model's ``backbone`` (Mask R-CNN's bottom-up trunk and FPN included), 1 elsewhere."""

    def lr_factor(name: str) -> float:
        return factor if name.startswith("backbone.") else 1.0

    return lr_factor


def build_boneage_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """``BONEAGE.SOLVER.OPTIMIZER``: Detectron2's SGD (momentum, ``SOLVER.NESTEROV``), or Adam /
    AdamW with the same per-parameter weight-decay rules and gradient clipping; the backbone's
    learning rate scaled by ``BONEAGE.SOLVER.BACKBONE_LR_FACTOR``."""
    name = cfg.BONEAGE.SOLVER.OPTIMIZER
    if name not in OPTIMIZERS:
        raise ValueError(f"BONEAGE.SOLVER.OPTIMIZER={name!r}; expected one of {sorted(OPTIMIZERS)}")
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
        lr_factor_func=backbone_lr_factor(cfg.BONEAGE.SOLVER.BACKBONE_LR_FACTOR),
    )
    kwargs = {"lr": cfg.SOLVER.BASE_LR}
    if name == "SGD":  # Detectron2's SGD settings
        kwargs.update(momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV)
    return maybe_add_gradient_clipping(cfg, OPTIMIZERS[name])(params, **kwargs)


_d2_create_ddp_model = d2_defaults.create_ddp_model


def create_ddp_model(model: torch.nn.Module, **kwargs) -> torch.nn.Module:
    """Detectron2's ``create_ddp_model`` that also works for a CPU model (GLOO, ``--num-gpus N``
    without CUDA): DDP rejects ``device_ids`` for CPU modules, and Detectron2 always passes
    ``device_ids=[local_rank]``, which DDP rejects for a CPU model: it gets ``device_ids=None``."""
    if "device_ids" not in kwargs and all(p.device.type == "cpu" for p in model.parameters()):
        kwargs["device_ids"] = None
    return _d2_create_ddp_model(model, **kwargs)


@contextlib.contextmanager
def _cpu_aware_ddp() -> Iterator[None]:
    """Within the block, ``DefaultTrainer.__init__`` wraps the model with our
    ``create_ddp_model``: it calls the module-level function directly, with no method a subclass
    could override in between."""
    d2_defaults.create_ddp_model = create_ddp_model
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = _d2_create_ddp_model


class _FiniteLossMixin:
    """Checks the loss terms on every rank before Detectron2 logs them (and before the optimizer
    step): ``_write_metrics`` is the one per-iteration call that receives the loss dict."""

    def _write_metrics(self, loss_dict, data_time, prefix="", iter=None):  # noqa: A002
        check_finite_losses(loss_dict, self.iter if iter is None else iter)
        super()._write_metrics(loss_dict, data_time, prefix=prefix, iter=iter)


class GuardedSimpleTrainer(_FiniteLossMixin, SimpleTrainer):
    """``SimpleTrainer`` that raises ``DivergenceError`` (every rank) on a non-finite loss term."""


class GuardedAMPTrainer(_FiniteLossMixin, AMPTrainer):
    """``AMPTrainer`` that raises ``DivergenceError`` (every rank) on a non-finite loss term."""


def configure_determinism(cfg) -> None:
    """``BONEAGE.TRAIN.DETERMINISTIC``: deterministic cuDNN / cuBLAS / PyTorch kernels.

    Sets ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an op with no
    deterministic CUDA kernel warns with its name and stays non-deterministic),
    ``cudnn.deterministic`` and ``CUBLAS_WORKSPACE_CONFIG`` (if unset). Call it in every process
    before the model is built. No effect on CPU training, which is deterministic already.
    """
    if not cfg.BONEAGE.TRAIN.DETERMINISTIC:
        return
    if cfg.CUDNN_BENCHMARK:
        raise ConfigError(
            "BONEAGE.TRAIN.DETERMINISTIC=True with CUDNN_BENCHMARK=True: the benchmark picks "
            "convolution algorithms by timing, so results vary; set CUDNN_BENCHMARK False"
        )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def sync_buffers_from_main(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    ``DefaultTrainer`` wraps the model in DDP with ``broadcast_buffers=False``, so each rank's
    running statistics follow its own share of every batch, while the checkpoint holds rank 0's.
    Evaluating each rank's share of the images with its own statistics would report numbers that
    the saved model does not reproduce."""
    if comm.get_world_size() == 1:
        return
    with torch.no_grad():
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)


class BoneAgeTrainer(DefaultTrainer):
    """``DefaultTrainer`` with the bone-age mapper, Adam/AdamW, bone-age + COCO evaluation, and:

    - DDP on CPU (``--num-gpus N`` with GLOO), see ``create_ddp_model``;
    - a non-finite loss term stops training on every rank (``DivergenceError`` naming the
      iteration and the terms), and non-finite weights are never checkpointed;
    - ``BONEAGE.TRAIN.EXACT_RESUME``: a run resumed from a periodic checkpoint repeats the
      uninterrupted run (``ExactResume``).
    """

    def __init__(self, cfg):
        with _cpu_aware_ddp():
            super().__init__(cfg)
        old = self._trainer
        guarded = GuardedAMPTrainer if isinstance(old, AMPTrainer) else GuardedSimpleTrainer
        self._trainer = guarded(old.model, old.data_loader, old.optimizer)
        old.concurrent_executor.shutdown(wait=False)
        # Every checkpoint carries the package version, git revision, config and data hashes.
        self.provenance = Provenance(collect_provenance(cfg))
        self.checkpointer.add_checkpointable("provenance", self.provenance)
        if comm.is_main_process():
            self.provenance.write(os.path.join(cfg.OUTPUT_DIR, "provenance.json"))

    def train(self):
        """Run training; return the last evaluation's results (``None`` if none ran).

        A ``DivergenceError`` propagates with a note naming the last checkpoint on disk."""
        try:
            super().train()
        except DivergenceError as e:
            if self.checkpointer.has_checkpoint():
                e.add_note(
                    f"last checkpoint (finite weights): {self.checkpointer.get_checkpoint_file()}"
                )
            raise
        return getattr(self, "_last_eval_results", None)

    def resume_or_load(self, resume: bool = True) -> None:
        """Detectron2's ``resume_or_load``, then a check that every rank starts at the same
        iteration: each rank reads ``OUTPUT_DIR/last_checkpoint`` itself, so a machine that does
        not see the main one's OUTPUT_DIR would silently start from scratch (DDP broadcast the
        initial weights before loading) and the ranks would disagree on the iteration."""
        super().resume_or_load(resume=resume)
        if comm.get_world_size() > 1:
            starts = comm.all_gather(self.start_iter)
            if len(set(starts)) > 1:
                raise RuntimeError(
                    f"ranks start at different iterations {starts} (index = rank) after "
                    f"resume_or_load(resume={resume}): every machine must see the same "
                    f"OUTPUT_DIR ({self.cfg.OUTPUT_DIR}) with its last_checkpoint, e.g. on a "
                    "shared file system"
                )

    def restart_data_loader(self, seed: int) -> None:
        """Replace the training loader by a fresh one built with ``cfg.SEED = seed`` (the seed of
        samplers that read it, e.g. ``RepeatFactorTrainingSampler``; ``TrainingSampler`` draws
        its seed from the numpy RNG, which ``ExactResume`` has just re-seeded). Used by
        ``ExactResume``; the old loader's iterator (and its workers) is dropped."""
        cfg = self.cfg.clone()
        cfg.defrost()
        cfg.SEED = int(seed)
        self._trainer.reset_data_loader(lambda: self.build_train_loader(cfg))

    def build_hooks(self):
        """Detectron2's hooks, plus:

        - ``ExactResume`` first (``BONEAGE.TRAIN.EXACT_RESUME``);
        - ``FiniteWeightsCheck`` right before the ``PeriodicCheckpointer`` (or ``EvalHook`` on
          the ranks that do not checkpoint), preceded by ``WeightsEMA`` when
          ``BONEAGE.SOLVER.EMA.ENABLED``;
        - ``ReduceLROnPlateau`` right after ``EvalHook`` when ``BONEAGE.SOLVER.PLATEAU.ENABLED``.
          The ``PeriodicCheckpointer`` then moves after it, so a checkpoint written at an
          evaluation iteration holds that evaluation's LR decision (Detectron2 checkpoints before
          evaluating; a resume would lose the reduction);
        - ``ValidationLoss`` before the ``PeriodicWriter`` when ``BONEAGE.EVAL.VAL_LOSS_PERIOD``.
        """
        ret = super().build_hooks()
        val_split = val_loss_dataset(self.cfg)
        if val_split:
            writer = next(
                (i for i, h in enumerate(ret) if isinstance(h, d2_hooks.PeriodicWriter)), len(ret)
            )
            ret.insert(
                writer,
                ValidationLoss(
                    self.cfg.BONEAGE.EVAL.VAL_LOSS_PERIOD,
                    lambda: self.build_val_loss_loader(self.cfg, val_split),
                ),
            )
        period = self.cfg.SOLVER.CHECKPOINT_PERIOD
        first = next(
            i
            for i, h in enumerate(ret)
            if isinstance(h, (d2_hooks.PeriodicCheckpointer, d2_hooks.EvalHook))
        )
        ret.insert(first, FiniteWeightsCheck(period))
        if self.cfg.BONEAGE.SOLVER.EMA.ENABLED:  # before the checkpointer and the evaluation
            ret.insert(first, WeightsEMA(self.cfg.BONEAGE.SOLVER.EMA.DECAY))
        if self.cfg.BONEAGE.TRAIN.EXACT_RESUME:
            ret.insert(0, ExactResume(period, self.cfg.SEED))
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
    def test(cls, cfg, model, evaluators=None):
        """Detectron2's evaluation, every rank using the checkpointed (rank 0) BatchNorm
        statistics (``sync_buffers_from_main``), through ``BoneAgeFlipTTA`` when
        ``BONEAGE.TEST.FLIP_TTA``."""
        sync_buffers_from_main(model)
        if cfg.BONEAGE.TEST.FLIP_TTA:
            model = BoneAgeFlipTTA(model)
        return super().test(cfg, model, evaluators)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_boneage_optimizer(cfg, model)

    @classmethod
    def build_train_loader(cls, cfg):
        """Detectron2's loader with our mapper; unreadable images it skipped are counted in the
        ``data/skipped_images`` metric (``BONEAGE.DATA.ON_BAD_IMAGE``); films with ROI boxes are
        drawn ``BONEAGE.DATA.ROI_REPEAT_FACTOR`` times as often."""
        mapper = BoneAgeDatasetMapper(cfg, is_train=True)
        return with_skipped_image_metric(
            build_detection_train_loader(cfg, mapper=mapper, **roi_repeat_loader_args(cfg))
        )

    @classmethod
    def build_val_loss_loader(cls, cfg, dataset_name: str):
        """The validation-loss batches of ``dataset_name``: the test-time resize (no random
        augmentation) with the training annotations the losses need; an unreadable image stops
        training, as in evaluation."""
        args = BoneAgeDatasetMapper.from_config(cfg, is_train=True)
        args.update(
            augmentations=build_boneage_augmentation(cfg, is_train=False), on_bad_image="fail"
        )
        return build_detection_test_loader(
            cfg,
            dataset_name,
            mapper=BoneAgeDatasetMapper(**args),
            batch_size=max(cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size(), 1),
        )

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
                interval_calibration=calibration_for_config(cfg),
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
