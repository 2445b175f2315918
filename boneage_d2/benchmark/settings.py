"""Sizes and repeats of one benchmark run, and config loading with their overrides."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "QUICK_INFERENCE_OPTS",
    "QUICK_TRAINING_OPTS",
    "RSNA_TRAIN_ROWS",
    "Settings",
    "load_cfg",
    "make_settings",
]

RSNA_TRAIN_ROWS = 12_611  # rows of the RSNA training label file

# quick: tiny inputs and narrow networks (R18, 32-channel heads), so that a run takes seconds:
# it checks the tool, its numbers say little about the models (for the tests).
QUICK_INFERENCE_OPTS = [
    "BONEAGE.INPUT.LONG_SIDE_TEST", 96,
    "BONEAGE.INPUT.LONG_SIDE_TRAIN", 96,
    "BONEAGE.INPUT.RANDOM_SCALE", (1.0, 1.0),
    "MODEL.RESNETS.DEPTH", 18,
    "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
    "MODEL.FPN.OUT_CHANNELS", 32,
    "MODEL.RPN.PRE_NMS_TOPK_TEST", 50,
    "MODEL.RPN.POST_NMS_TOPK_TEST", 20,
    "MODEL.ROI_BOX_HEAD.CONV_DIM", 32,
    "MODEL.ROI_BOX_HEAD.FC_DIM", 64,
    "MODEL.ROI_MASK_HEAD.CONV_DIM", 32,
    "TEST.DETECTIONS_PER_IMAGE", 2,
    "BONEAGE.ALANET.LOCAL_CHANNELS", 32,
    "BONEAGE.RAN.INPUT_SIZE", 32,
    "BONEAGE.RAN.STEM_CHANNELS", 16,
    "BONEAGE.RAN.STAGE_CHANNELS", [32, 32, 32],
    "BONEAGE.RAN.OUT_CHANNELS", 32,
    "BONEAGE.HANDSEG.MAX_HANDS_TEST", 1,
]  # fmt: skip
QUICK_TRAINING_OPTS = [
    "SOLVER.IMS_PER_BATCH", 2,
    "BONEAGE.INPUT.LONG_SIDE_TRAIN", 96,
    "BONEAGE.INPUT.LONG_SIDE_TEST", 96,
    "BONEAGE.INPUT.RANDOM_SCALE", (1.0, 1.0),
    "BONEAGE.RAN.INPUT_SIZE", 32,
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", 50,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 16,
]  # fmt: skip


@dataclass
class Settings:
    """Sizes and repeats of one run (the defaults, or the quick ones)."""

    batches: tuple[int, ...]
    warmup: int
    repeats: int
    budget_s: float
    train_warmup: int
    train_iters: int
    loader_batches: int
    num_images: int
    image_long_side_px: int
    convert_rows: int
    backbone_sizes: tuple[int, ...] = (256, 512)  # square inputs of the backbones section
    inference_opts: list = field(default_factory=list)
    training_opts: list = field(default_factory=list)


def make_settings(
    quick: bool = False,
    *,
    batch: int | None = None,
    warmup: int | None = None,
    repeats: int | None = None,
    budget_s: float | None = None,
    train_iters: int | None = None,
    loader_batches: int | None = None,
    num_images: int | None = None,
    convert_rows: int | None = None,
) -> Settings:
    """The given sizes, each ``None`` (or 0) replaced by its default, or its quick default."""
    q = quick
    return Settings(
        batches=tuple(sorted({1, batch or (2 if q else 8)})),
        warmup=1 if warmup is None else warmup,
        repeats=repeats or (2 if q else 7),
        budget_s=budget_s if budget_s is not None else (5.0 if q else 60.0),
        train_warmup=1 if q else 2,
        train_iters=train_iters or (2 if q else 5),
        loader_batches=loader_batches or (3 if q else 8),
        num_images=num_images or (8 if q else 64),
        image_long_side_px=128 if q else 512,
        convert_rows=convert_rows or (40 if q else RSNA_TRAIN_ROWS),
        backbone_sizes=(128,) if q else (256, 512),
        inference_opts=list(QUICK_INFERENCE_OPTS) if q else [],
        training_opts=list(QUICK_TRAINING_OPTS) if q else [],
    )


def load_cfg(config: str | Path | None, device: str, opts: Sequence) -> Any:
    """``load_config(config)`` (the defaults when ``None``) with ``opts`` (any values,
    stringified) and ``MODEL.DEVICE``."""
    from boneage_d2.engine import load_config

    flat = [str(v) if not isinstance(v, str) else v for v in opts]
    path = os.fspath(config) if config is not None else None
    return load_config(path, [*flat, "MODEL.DEVICE", device])
