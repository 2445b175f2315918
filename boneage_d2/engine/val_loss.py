"""Validation loss during training: the training losses on a held-out split, written beside the
training loss (``val/<loss>``, ``val/total_loss``) in ``metrics.json`` and TensorBoard."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from detectron2.engine import HookBase
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import EventStorage
from torch import nn

__all__ = ["WRITER_PERIOD", "ValidationLoss", "validation_losses", "val_loss_dataset"]

logger = logging.getLogger(__name__)

PREFIX = "val/"
# DefaultTrainer's PeriodicWriter writes the latest value of each key every 20 iterations: the
# validation period is a multiple of it, so no validation is overwritten before it is written.
WRITER_PERIOD = 20


def val_loss_dataset(cfg) -> str | None:
    """The split ``BONEAGE.EVAL.VAL_LOSS_PERIOD`` reads: ``BONEAGE.EVAL.VAL_LOSS_DATASET``, else
    ``DATASETS.TEST[0]``; None when the hook is off."""
    if cfg.BONEAGE.EVAL.VAL_LOSS_PERIOD <= 0:
        return None
    name = cfg.BONEAGE.EVAL.VAL_LOSS_DATASET or (cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else "")
    return name or None


@contextlib.contextmanager
def _loss_mode(model: nn.Module) -> Iterator[None]:
    """Training mode (the models return their losses only then) with every BatchNorm in eval mode
    (its running statistics are used, never updated); the modes are restored after."""
    modes = {m: m.training for m in model.modules()}
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


@contextlib.contextmanager
def _rng_kept(seed: int) -> Iterator[None]:
    """Run the block with every RNG seeded with ``seed`` (the same proposal and ROI sampling at
    every validation), then give the training its RNG states back untouched."""
    py, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 (the global RNG)
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        seed_all_rng(seed)
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(np_state)  # noqa: NPY002


def validation_losses(model: nn.Module, batches: Iterable[list[dict]], seed: int = 0) -> dict:
    """Mean of each loss term over every image of ``batches`` (all processes together), and their
    sum ``total_loss``: the model in training mode, without gradients, BatchNorm statistics kept
    (see ``_loss_mode``), the RNGs and the event storage of the caller untouched."""
    model = getattr(model, "module", model)  # DDP: the shards differ in length, no collectives
    sums: dict[str, float] = {}
    count = 0
    # A storage of its own: what the models log in training mode (RPN anchor counts, ...) stays
    # out of the training's metrics.
    with _loss_mode(model), _rng_kept(seed), torch.no_grad(), EventStorage():
        for batch in batches:
            for name, value in model(batch).items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(batch)
            count += len(batch)
    if comm.get_world_size() > 1:
        gathered = comm.all_gather((sums, count))
        count = sum(n for _, n in gathered)
        sums = {k: sum(s.get(k, 0.0) for s, _ in gathered) for k in gathered[0][0]}
    if count == 0:
        raise ValueError("validation loss: the split gave no image")
    means = {k: v / count for k, v in sums.items()}
    means["total_loss"] = sum(means.values())
    return means


class ValidationLoss(HookBase):
    """Every ``period`` iterations and after the last one, ``validation_losses`` on a held-out
    split, put in the event storage as ``val/<loss>`` and ``val/total_loss`` at that iteration
    (Detectron2's writers then show them beside ``total_loss``). Runs on every process (each on
    its shard of the split); register it before ``PeriodicWriter``."""

    def __init__(self, period: int, build_loader: Callable[[], Iterable[list[dict]]]):
        """
        Args:
            period: iterations between validations (``BONEAGE.EVAL.VAL_LOSS_PERIOD``), > 0.
            build_loader: returns the split's batches (test-time resize, training annotations);
                called once, at the first validation.
        """
        if period <= 0:
            raise ValueError(f"BONEAGE.EVAL.VAL_LOSS_PERIOD must be > 0, got {period}")
        self.period = int(period)
        self._build_loader = build_loader
        self._loader = None

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if next_iter % self.period != 0 and next_iter != self.trainer.max_iter:
            return
        if self._loader is None:
            self._loader = self._build_loader()
        losses = validation_losses(self.trainer.model, self._loader)
        if comm.is_main_process():
            storage = self.trainer.storage
            for name, value in losses.items():
                storage.put_scalar(PREFIX + name, value, smoothing_hint=False)
            logger.info(
                "validation loss at iteration %d: %s",
                self.trainer.iter,
                ", ".join(f"{k}={v:.4g}" for k, v in losses.items()),
            )
