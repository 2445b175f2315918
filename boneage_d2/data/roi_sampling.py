"""Films with ROI boxes drawn more often in training (``BONEAGE.DATA.ROI_REPEAT_FACTOR``).

With a few annotated films among many, most batches hold no ROI box, so the RPN and patch losses
(which leave unannotated films out) rarely train. A repeat factor R > 1 gives every film with
ROI boxes the per-image repeat factor R, every other film 1, in Detectron2's
``RepeatFactorTrainingSampler``: per epoch of its index stream an annotated film comes R times
(fractional R by stochastic rounding), the others once.
"""

from __future__ import annotations

import logging

import torch
from detectron2.data import get_detection_dataset_dicts
from detectron2.data.samplers import RepeatFactorTrainingSampler

__all__ = ["roi_repeat_factors", "roi_repeat_loader_args"]

logger = logging.getLogger(__name__)


def roi_repeat_factors(dataset_dicts: list[dict], factor: float) -> torch.Tensor:
    """Per-image repeat factors: ``factor`` for a film with ROI boxes (``roi_annotations``), 1
    for the others."""
    return torch.tensor(
        [float(factor) if d.get("roi_annotations") else 1.0 for d in dataset_dicts],
        dtype=torch.float32,
    )


def roi_repeat_loader_args(cfg) -> dict:
    """Extra keyword arguments of ``build_detection_train_loader(cfg, ...)``: none when
    ``BONEAGE.DATA.ROI_REPEAT_FACTOR`` is 1 (Detectron2's own sampler), else the training dicts
    (read as Detectron2's loader reads them) and a ``RepeatFactorTrainingSampler`` over them,
    seeded by ``cfg.SEED`` (a shared random seed when negative)."""
    factor = float(cfg.BONEAGE.DATA.ROI_REPEAT_FACTOR)
    if not factor >= 1.0:
        raise ValueError(f"BONEAGE.DATA.ROI_REPEAT_FACTOR={factor:g}; must be >= 1 (1 = off)")
    if factor == 1.0:
        return {}
    dataset = get_detection_dataset_dicts(
        cfg.DATASETS.TRAIN,
        filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
        min_keypoints=cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE
        if cfg.MODEL.KEYPOINT_ON
        else 0,
    )
    factors = roi_repeat_factors(dataset, factor)
    annotated = int((factors > 1).sum())
    if not annotated:
        logger.warning(f"ROI_REPEAT_FACTOR {factor:g}: no training film has ROI boxes")
    share = float(factors[factors > 1].sum() / factors.sum())
    logger.info(
        f"ROI_REPEAT_FACTOR {factor:g}: {annotated} of {len(dataset)} training films have ROI "
        f"boxes, {share:.0%} of the draws"
    )
    seed = cfg.SEED if cfg.SEED >= 0 else None
    return {"dataset": dataset, "sampler": RepeatFactorTrainingSampler(factors, seed=seed)}
