"""Ordinal regression for bone age (ALA-Net Eq. 1), independent of any network.

An age becomes a rank ``r = round(age / width)`` in ``[0, K-1]``; rank ``r`` becomes ``K-1``
binary targets ``1{r > k}``, ``k = 0..K-2``. A network outputs ``K-1`` logits ``o_k``; the loss is
the mean binary cross-entropy over the ``K-1`` tasks (Eq. 1) and the predicted rank is the sum of
the probabilities ``P(r > k)``, so the predicted age is ``width * sum_k P(r > k)``.

Ranks are defined by rounding, not flooring: with ``floor`` the decoded age would be biased low
by half a rank width (see docs/ordinal.md).

Formulations (config ``BONEAGE.ORDINAL.FORMULATION``):
- ``independent``: the paper's ``K-1`` free logits.
- ``coral``: one shared weight vector and ``K-1`` biases (Cao et al. 2020), rank-consistent. Same
  loss as ``independent``; only the output layer differs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "FORMULATIONS",
    "age_to_rank",
    "rank_to_levels",
    "ordinal_loss",
    "ordinal_probabilities",
    "probabilities_to_months",
    "prior_level_logits",
]

FORMULATIONS = ("independent", "coral")


def _check_formulation(formulation: str) -> None:
    if formulation not in FORMULATIONS:
        raise ValueError(
            f"Unknown ordinal formulation {formulation!r}; expected one of {FORMULATIONS}"
        )


def age_to_rank(age_months: Tensor, rank_width_months: float, num_ranks: int) -> Tensor:
    """Ages (months, any shape) -> integer ranks ``round(age / width)`` clipped to [0, K-1]."""
    rank = torch.round(age_months.float() / rank_width_months)
    return rank.clamp_(0, num_ranks - 1).long()


def rank_to_levels(rank: Tensor, num_ranks: int) -> Tensor:
    """Ranks [N] -> binary targets [N, K-1] with ``levels[i, k] = 1{rank_i > k}``."""
    thresholds = torch.arange(num_ranks - 1, device=rank.device)
    return (rank.unsqueeze(1) > thresholds).float()


def ordinal_loss(logits: Tensor, rank: Tensor, formulation: str = "independent") -> Tensor:
    """Mean binary cross-entropy over the ``K-1`` tasks and the batch (ALA-Net Eq. 1).

    Args:
        logits: [N, K-1] raw scores.
        rank: [N] integer target ranks.
    """
    _check_formulation(formulation)
    levels = rank_to_levels(rank, logits.shape[1] + 1)
    return F.binary_cross_entropy_with_logits(logits, levels, reduction="mean")


def ordinal_probabilities(logits: Tensor, formulation: str = "independent") -> Tensor:
    """[N, K-1] logits -> [N, K-1] probabilities ``P(rank > k)``."""
    _check_formulation(formulation)
    return torch.sigmoid(logits)


def probabilities_to_months(probas: Tensor, rank_width_months: float) -> Tensor:
    """Expected rank ``sum_k P(rank > k)`` times the rank width: the predicted age in months."""
    return probas.sum(dim=1) * rank_width_months


def prior_level_logits(
    num_ranks: int, rank_width_months: float, mean_months: float, std_months: float
) -> Tensor:
    """Logits of ``P(rank > k)`` under a logistic prior with the given age mean and std.

    Used to initialise output biases so an untrained head predicts the prior mean age with a
    calibrated spread, instead of ``(K-1)/2`` ranks.
    """
    scale = max(std_months, 1e-3) * math.sqrt(3.0) / math.pi  # logistic scale with that std
    k = torch.arange(num_ranks - 1, dtype=torch.float32)
    threshold_months = (k + 0.5) * rank_width_months
    return (mean_months - threshold_months) / scale
