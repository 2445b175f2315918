"""``boneage-lazy-train``: training and evaluation from a LazyConfig, the Python configs of
Detectron2's newer projects (``python tools/lazyconfig_train_net.py`` runs the same).

    boneage-lazy-train --config-file Global/R18-phantom-demo.py            # a packaged config
    boneage-lazy-train --config-file my_config.py train.max_iter=300 train.output_dir=out/x
    boneage-lazy-train --config-file ... --eval-only train.init_checkpoint=out/x/model_final.pth
    boneage-lazy-train --config-file ... --resume
    boneage-lazy-train --config-file ... --num-gpus 2

A config holds the keys of Detectron2's LazyConfig training: ``model``, ``dataloader.train``,
``dataloader.test``, ``dataloader.evaluator``, ``optimizer`` (its ``params.model`` is set to the
model here), ``lr_multiplier`` and ``train`` (``output_dir``, ``init_checkpoint``, ``max_iter``,
``amp.enabled``, ``ddp``, ``checkpointer``, ``eval_period``, ``log_period``, ``device``,
``seed``). Overrides are ``key=value`` (Hydra syntax). The training loop is this package's: a
non-finite loss stops every process, and DDP runs on CPU too (docs/training.md).
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import default_argument_parser, default_setup, hooks, launch
from detectron2.engine.defaults import default_writers
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from omegaconf import DictConfig
from torch import nn

from ..data.bad_images import with_skipped_image_metric
from ..engine.trainer import (
    GuardedAMPTrainer,
    GuardedSimpleTrainer,
    create_ddp_model,
    sync_buffers_from_main,
)
from ..model_zoo import UnknownConfigError, resolve_config_file

__all__ = ["build_parser", "cli", "evaluate", "load_lazy_config", "main", "train"]

logger = logging.getLogger(__name__)


def load_lazy_config(name_or_path: str, overrides: list[str] | None = None) -> DictConfig:
    """A LazyConfig file or packaged name (``Global/R18-phantom-demo.py``) with ``key=value``
    overrides; ``train.device`` "cuda" falls back to "cpu" on a machine without a GPU."""
    cfg = LazyConfig.load(resolve_config_file(name_or_path))
    cfg = LazyConfig.apply_overrides(cfg, list(overrides or []))
    if str(cfg.train.device).startswith("cuda") and not torch.cuda.is_available():
        logger.warning("train.device=%s but no GPU is available: using cpu", cfg.train.device)
        cfg.train.device = "cpu"
    return cfg


def evaluate(cfg: DictConfig, model: nn.Module) -> dict:
    """``dataloader.evaluator`` over ``dataloader.test`` (every process using rank 0's BatchNorm
    statistics, as ``BoneAgeTrainer.test``); ``{}`` when the config has no evaluator."""
    if "evaluator" not in cfg.dataloader or "test" not in cfg.dataloader:
        return {}
    sync_buffers_from_main(model)
    results = inference_on_dataset(
        model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
    )
    if comm.is_main_process():
        print_csv_format(results)
    return results


def _build_model(cfg: DictConfig) -> nn.Module:
    model = instantiate(cfg.model)
    logger.info("Model:\n%s", model)
    return model.to(cfg.train.device)


def train(cfg: DictConfig, resume: bool = False) -> dict:
    """Train ``cfg`` (resuming from ``train.output_dir``'s last checkpoint when ``resume``);
    returns the last evaluation's results."""
    model = _build_model(cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    loader = with_skipped_image_metric(instantiate(cfg.dataloader.train))
    model = create_ddp_model(model, **cfg.train.ddp)
    loop = GuardedAMPTrainer if cfg.train.amp.enabled else GuardedSimpleTrainer
    trainer = loop(model, loader, optimizer)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    last: dict = {}

    def evaluate_and_keep() -> dict:
        last.clear()
        last.update(evaluate(cfg, model))
        return dict(last)

    main_process = comm.is_main_process()
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer)
            if main_process
            else None,
            hooks.EvalHook(cfg.train.eval_period, evaluate_and_keep),
            hooks.PeriodicWriter(
                default_writers(cfg.train.output_dir, cfg.train.max_iter),
                period=cfg.train.log_period,
            )
            if main_process
            else None,
        ]
    )
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    start_iter = trainer.iter + 1 if resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)
    return last


def main(args: argparse.Namespace) -> dict:
    """Train, or evaluate ``train.init_checkpoint`` (``--eval-only``), on this process."""
    cfg = load_lazy_config(args.config_file, args.opts)
    # Detectron2 logs the config file's text: give it the file a packaged name stands for.
    path = resolve_config_file(args.config_file)
    default_setup(cfg, argparse.Namespace(**{**vars(args), "config_file": path}))
    if not args.eval_only:
        return train(cfg, resume=args.resume)
    model = create_ddp_model(_build_model(cfg))
    DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
    return evaluate(cfg, model)


def build_parser() -> argparse.ArgumentParser:
    """Detectron2's training arguments; trailing ``key=value`` overrides."""
    parser = default_argument_parser(epilog=__doc__)
    parser.prog = "boneage-lazy-train"
    return parser


def cli(argv: list[str] | None = None) -> None:
    """Console-script entry point: parse ``argv`` and launch ``main`` on every process."""
    args = build_parser().parse_args(argv)
    try:
        resolve_config_file(args.config_file)
    except UnknownConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
