"""Training hooks: reduce the learning rate when a validation metric plateaus (paper A), an
exponential moving average of the weights, and the reliability hooks of docs/training.md (exact
resume, divergence checks)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.distributed as dist
from detectron2.engine import HookBase
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng

__all__ = [
    "WeightsEMA",
    "DivergenceError",
    "ExactResume",
    "FiniteWeightsCheck",
    "ReduceLROnPlateau",
    "check_finite_losses",
    "derive_seed",
]

logger = logging.getLogger(__name__)

MODES = ("min", "max")


class ReduceLROnPlateau(HookBase):
    """Multiply the learning rate by ``factor`` after ``patience`` evaluations without improvement.

    Paper A: "the learning rate was divided by 10 automatically when validation loss plateaued
    for 5 epochs" (``factor=0.1, patience=5``, one evaluation per epoch via ``eval_period``).

    The watched value is an evaluation result that ``EvalHook`` put in the event storage (flat
    key, e.g. ``"boneage/MAE"``, ``"segm/AP"``), read at the iterations where ``EvalHook``
    evaluates (``(iter + 1) % eval_period == 0``, not the last iteration); the hook must come
    after ``EvalHook`` in the hook list. Only the main process has evaluation results, so the
    value is broadcast and every process takes the same decision (DDP keeps one LR).

    Detectron2's ``LRScheduler`` hook steps an ``LRMultiplier`` that rewrites every param
    group's ``lr`` from its ``base_lrs`` each iteration, so a reduction scales the
    scheduler's ``base_lrs`` (checkpointed with the scheduler's state) and the current
    ``lr`` of each param group (effective at once). ``best``, the count of bad evaluations and
    the number of reductions are in ``state_dict``, so a resumed run continues the plateau.
    """

    def __init__(
        self,
        eval_period: int,
        metric: str = "boneage/MAE",
        *,
        mode: str = "min",
        patience: int = 5,
        factor: float = 0.1,
        threshold: float = 0.0,
        min_lr: float = 0.0,
        scheduler=None,
        optimizer=None,
    ):
        """
        Args:
            eval_period: iterations between evaluations (``TEST.EVAL_PERIOD``), > 0.
            metric: flat key of the evaluation result to watch.
            mode: "min" (losses, MAE) or "max" (AP).
            patience: evaluations without improvement that trigger a reduction (>= 1).
            factor: LR multiplier per reduction, in (0, 1).
            threshold: an evaluation improves only if better than ``best`` by more than this.
            min_lr: base LRs are not reduced below it.
            scheduler, optimizer: default to the trainer's.
        """
        if eval_period <= 0:
            raise ValueError(
                "BONEAGE.SOLVER.PLATEAU needs periodic evaluation: set TEST.EVAL_PERIOD > 0 "
                f"(got {eval_period})"
            )
        if mode not in MODES:
            raise ValueError(f"BONEAGE.SOLVER.PLATEAU.MODE={mode!r}; expected one of {MODES}")
        if patience < 1:
            raise ValueError(f"BONEAGE.SOLVER.PLATEAU.PATIENCE must be >= 1, got {patience}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"BONEAGE.SOLVER.PLATEAU.FACTOR must be in (0, 1), got {factor}")
        self.eval_period = eval_period
        self.metric = metric
        self.mode = mode
        self.patience = patience
        self.factor = factor
        self.threshold = threshold
        self.min_lr = min_lr
        self._scheduler = scheduler
        self._optimizer = optimizer
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad = 0
        self.num_reductions = 0
        self.last_eval_iter = -1

    @classmethod
    def from_config(cls, cfg) -> ReduceLROnPlateau:
        """The hook of ``cfg.BONEAGE.SOLVER.PLATEAU`` with ``TEST.EVAL_PERIOD``."""
        c = cfg.BONEAGE.SOLVER.PLATEAU
        return cls(
            cfg.TEST.EVAL_PERIOD,
            c.METRIC,
            mode=c.MODE,
            patience=c.PATIENCE,
            factor=c.FACTOR,
            threshold=c.THRESHOLD,
            min_lr=c.MIN_LR,
        )

    @property
    def scheduler(self):
        return self._scheduler if self._scheduler is not None else self.trainer.scheduler

    @property
    def optimizer(self):
        return self._optimizer if self._optimizer is not None else self.trainer.optimizer

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.threshold
        return value > self.best + self.threshold

    def step(self, value: float) -> bool:
        """Record one evaluation's ``value``; reduce the LR when the plateau is long enough.
        Returns whether the LR was reduced."""
        if self._improved(value):
            self.best = value
            self.num_bad = 0
            return False
        self.num_bad += 1
        if self.num_bad < self.patience:
            return False
        self.num_bad = 0
        self.reduce_lr()
        return True

    def reduce_lr(self) -> None:
        """Scale the scheduler's ``base_lrs`` (and the current ``lr``s) by ``factor``."""
        scheduler = self.scheduler
        if not hasattr(scheduler, "base_lrs"):
            raise TypeError(
                f"ReduceLROnPlateau needs a torch LR scheduler with base_lrs, got {type(scheduler)}"
            )
        old = list(scheduler.base_lrs)
        new = [max(lr * self.factor, min(self.min_lr, lr)) for lr in old]
        scheduler.base_lrs = new
        for group, lr_old, lr_new in zip(self.optimizer.param_groups, old, new):
            group["lr"] = group["lr"] * (lr_new / lr_old) if lr_old > 0 else group["lr"]
        self.num_reductions += 1
        logger.info(
            f"ReduceLROnPlateau: {self.metric} has not improved on {self.best:.4g} for "
            f"{self.patience} evaluations; base LR {max(old):.3g} -> {max(new):.3g}"
        )

    def _read_metric(self) -> float | None:
        """This iteration's evaluation value on the main process, broadcast to all."""
        value = None
        if comm.is_main_process():
            latest = self.trainer.storage.latest()
            if self.metric in latest and latest[self.metric][1] == self.trainer.iter:
                value = float(latest[self.metric][0])
            else:
                logger.warning(
                    f"ReduceLROnPlateau: no {self.metric!r} in the evaluation at iteration "
                    f"{self.trainer.iter}; results: {sorted(k for k in latest if '/' in k)}"
                )
        if comm.get_world_size() > 1:
            value = comm.all_gather(value)[0]
        return value

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if next_iter % self.eval_period != 0 or next_iter == self.trainer.max_iter:
            return  # EvalHook evaluates at the same iterations (the last one in after_train)
        if self.trainer.iter <= self.last_eval_iter:
            return
        self.last_eval_iter = self.trainer.iter
        value = self._read_metric()
        if value is not None and math.isfinite(value):
            self.step(value)
        storage = self.trainer.storage
        storage.put_scalar("plateau/num_bad", self.num_bad, smoothing_hint=False)
        storage.put_scalar("plateau/num_reductions", self.num_reductions, smoothing_hint=False)

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "num_bad": self.num_bad,
            "num_reductions": self.num_reductions,
            "last_eval_iter": self.last_eval_iter,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = float(state_dict["best"])
        self.num_bad = int(state_dict["num_bad"])
        self.num_reductions = int(state_dict["num_reductions"])
        self.last_eval_iter = int(state_dict["last_eval_iter"])


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or weight. ``iteration`` is the iteration at which it
    was detected and ``names`` the offending loss terms / state-dict keys (all ranks)."""

    def __init__(self, message: str, iteration: int, names: list[str]):
        super().__init__(message)
        self.iteration = iteration
        self.names = names


def check_finite_losses(loss_dict: Mapping[str, torch.Tensor], iteration: int) -> None:
    """Raise ``DivergenceError`` naming ``iteration`` and every non-finite loss term, on every rank.

    Call it on every process before the optimizer step. Detectron2 checks only the main
    process's averaged total (``SimpleTrainer.write_metrics``), so under DDP the other ranks
    would wait in the next collective until the launch timeout. Here one scalar
    all-reduce per iteration tells every rank whether any rank saw a non-finite term; only then
    are the names gathered for the message.
    """
    if not loss_dict:
        return
    values = torch.stack([v.detach().float().reshape(()) for v in loss_dict.values()])
    num_bad = (~torch.isfinite(values)).sum()
    if comm.get_world_size() > 1:
        dist.all_reduce(num_bad)
    if int(num_bad) == 0:
        return
    local = [f"{k}={float(v):.4g}" for k, v in zip(loss_dict, values) if not torch.isfinite(v)]
    per_rank = comm.all_gather(local) if comm.get_world_size() > 1 else [local]
    where = "; ".join(
        f"rank {r}: {', '.join(terms)}" if len(per_rank) > 1 else ", ".join(terms)
        for r, terms in enumerate(per_rank)
        if terms
    )
    names = sorted({t.split("=")[0] for terms in per_rank for t in terms})
    raise DivergenceError(
        f"non-finite loss at iteration {iteration}: {where}. Training stopped before the "
        "optimizer step, so no checkpoint holds this iteration; lower SOLVER.BASE_LR, lengthen "
        "SOLVER.WARMUP_ITERS or enable SOLVER.CLIP_GRADIENTS, then --resume from the last one.",
        iteration,
        names,
    )


class FiniteWeightsCheck(HookBase):
    """Stop training before a checkpoint would save non-finite weights.

    A finite loss can still leave non-finite weights after the optimizer step (an overflowing
    gradient, a NaN through gradient clipping), and Detectron2's ``PeriodicCheckpointer`` would
    save them as the newest checkpoint. Registered before the checkpointer, this hook checks the
    model's parameters and buffers at the iterations where it saves (every ``period`` and the
    last) and raises ``DivergenceError`` naming them, leaving the previous checkpoint the last
    one on disk. DDP replicas hold the same weights, so every rank raises at the same iteration.
    """

    def __init__(self, period: int):
        """
        Args:
            period: ``SOLVER.CHECKPOINT_PERIOD``; weights are checked when
                ``(iter + 1) % period == 0`` and at the last iteration.
        """
        self.period = int(period)

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if next_iter % self.period != 0 and next_iter != self.trainer.max_iter:
            return
        model = self.trainer.model
        model = getattr(model, "module", model)  # DDP
        bad = [
            k
            for k, v in model.state_dict().items()
            if v.is_floating_point() and not bool(torch.isfinite(v).all())
        ]
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise DivergenceError(
                f"non-finite weights after iteration {self.trainer.iter}: {shown}. Not saving a "
                "checkpoint; lower SOLVER.BASE_LR or enable SOLVER.CLIP_GRADIENTS, then --resume.",
                self.trainer.iter,
                bad,
            )


def derive_seed(*keys: int) -> int:
    """A seed in ``[0, 2**31)`` that is a fixed, well-mixed function of ``keys`` (numpy's
    ``SeedSequence``), e.g. ``derive_seed(cfg.SEED, iteration, rank)``."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0] % 2**31)


class ExactResume(HookBase):
    """Make the training data stream and RNGs of ``[k, k + period)`` a function of ``(seed, k)``.

    Detectron2's checkpoint restores the model, optimizer, scheduler, iteration and hook states,
    but nothing of the data pipeline: after ``--resume`` the ``TrainingSampler`` replays its
    stream from the first index, and the numpy / torch / python RNGs (augmentation, proposal
    sampling, dropout) restart from ``default_setup``'s ``SEED + rank``. Saving the
    loader's state instead would mean its sampler position, aspect-ratio buckets, prefetched
    batches and worker RNGs.

    So at ``start_iter`` and at every multiple ``k`` of ``period`` (``SOLVER.CHECKPOINT_PERIOD``)
    this hook re-seeds every RNG with ``derive_seed(seed, k, rank)`` and restarts the training
    loader (``trainer.restart_data_loader``) with sampler seed ``derive_seed(seed, k)``. A run
    resumed from the checkpoint of iteration ``k - 1`` starts at ``k`` exactly as the
    uninterrupted run continues there, so on a deterministic device both give the same weights.
    Cost: one loader rebuild per period (and one at start). Each segment's sampler begins a new
    shuffle, so the epoch in progress at a boundary is cut short (``period * batch`` images per
    segment is usually many epochs).

    ``seed`` is ``cfg.SEED``; when negative, a shared random seed is drawn at the first start and
    kept in the checkpoint (``state_dict``), so a resume continues the same sequence.
    """

    def __init__(self, period: int, seed: int):
        """
        Args:
            period: iterations between restarts; resuming is exact from checkpoints at
                multiples of it, so use ``SOLVER.CHECKPOINT_PERIOD``.
            seed: base seed (``cfg.SEED``); negative = draw one (shared by all ranks).
        """
        if period <= 0:
            raise ValueError(f"ExactResume needs SOLVER.CHECKPOINT_PERIOD > 0, got {period}")
        self.period = int(period)
        self.seed = int(seed) if seed >= 0 else None

    def before_train(self) -> None:
        if self.seed is None:
            self.seed = comm.shared_random_seed()
            logger.info(f"ExactResume: SEED < 0, drew base seed {self.seed}")

    def before_step(self) -> None:
        it = self.trainer.iter
        if it != self.trainer.start_iter and it % self.period != 0:
            return
        seed_all_rng(derive_seed(self.seed, it, comm.get_rank()))
        self.trainer.restart_data_loader(derive_seed(self.seed, it))

    def state_dict(self) -> dict:
        return {"seed": self.seed} if self.seed is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self.seed = int(state_dict["seed"])


class WeightsEMA(HookBase):
    """Exponential moving average of the model's weights and buffers (BatchNorm statistics).

    Updated after every iteration with decay ``min(decay, (1 + n) / (10 + n))`` at update ``n``
    (the warm-up keeps a short run's average from clinging to its first weights). After the last
    iteration the averaged weights replace the model's, so the final checkpoint
    (``model_final.pth``) and the final evaluation are the average's: the hook must come before
    ``PeriodicCheckpointer`` and ``EvalHook``. Evaluations during training see the raw weights.
    The average is checkpointed with the trainer, so ``--resume`` continues it.
    """

    def __init__(self, decay: float = 0.99):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"BONEAGE.SOLVER.EMA.DECAY must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self._average: dict[str, torch.Tensor] | None = None

    def _model(self) -> torch.nn.Module:
        model = self.trainer.model
        return model.module if hasattr(model, "module") else model  # DDP

    def before_train(self) -> None:
        if self._average is None:  # not resumed: start from the (loaded) weights
            self._average = {k: v.detach().clone() for k, v in self._model().state_dict().items()}

    @torch.no_grad()
    def after_step(self) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for k, v in self._model().state_dict().items():
            avg = self._average[k]
            if avg.is_floating_point():
                avg.mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:  # counters (num_batches_tracked)
                avg.copy_(v)
        self.updates += 1
        if self.trainer.iter + 1 >= self.trainer.max_iter:
            self._model().load_state_dict(self._average)
            logger.info("WeightsEMA: the model now holds the average of %d updates", self.updates)

    def state_dict(self) -> dict:
        return {"average": self._average, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self._average = state["average"]
        self.updates = int(state["updates"])
