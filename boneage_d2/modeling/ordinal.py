"""Ordinal regression for bone age (ALA-Net Eq. 1), independent of any network.

An age becomes a rank ``r = round(age / width)`` in ``[0, K-1]``; rank ``r`` becomes ``K-1``
binary targets ``1{r > k}``, ``k = 0..K-2``. A network outputs ``K-1`` logits ``o_k``; the loss is
the mean binary cross-entropy over the ``K-1`` tasks (Eq. 1) and the predicted rank is the sum of
the probabilities ``P(r > k)``, so the predicted age is ``width * sum_k P(r > k)``.

Ranks are defined by rounding, not flooring: with ``floor`` the decoded age would be biased low
by half a rank width (see docs/ordinal.md).

Formulations (config ``BONEAGE.ORDINAL.FORMULATION``), all normalised and decoded one way:
- ``independent``: the paper's ``K-1`` free logits, mean BCE (Eq. 1).
- ``coral``: one shared weight vector and ``K-1`` biases (Cao et al. 2020), rank-consistent;
  coral-pytorch's ``coral_loss`` divided by ``K-1`` (it sums over the tasks), i.e. Eq. 1.
- ``corn``: conditional training (Shi et al. 2021): task ``k`` trains on the examples with
  ``rank >= k`` only, mean BCE over those pairs. Same value as coral-pytorch's ``corn_loss``
  (a test checks it), vectorised: theirs loops over the ``K-1`` tasks in Python, ~0.5 s per
  step at ``K = 241`` on CPU. Its logits are conditional, so ``P(rank > k)`` is the cumulative
  product of their sigmoids.
The predicted rank is always the expected rank ``sum_k P(rank > k)`` (coral-pytorch's label
helpers count ``p > 0.5`` instead, a median-like decoding we do not use).
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
    "rank_interval_months",
]

FORMULATIONS = ("independent", "coral", "corn")


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
    num_ranks = logits.shape[1] + 1
    levels = rank_to_levels(rank, num_ranks)
    if formulation == "corn":
        # Task k sees the examples with rank > k-1 (rank >= k); target 1{rank > k}.
        seen = rank_to_levels(rank + 1, num_ranks)
        bce = F.binary_cross_entropy_with_logits(logits, levels, reduction="none")
        return (bce * seen).sum() / seen.sum().clamp(min=1.0)
    if formulation == "coral":
        from coral_pytorch.losses import coral_loss

        return coral_loss(logits, levels) / (num_ranks - 1)
    return F.binary_cross_entropy_with_logits(logits, levels, reduction="mean")


def ordinal_probabilities(logits: Tensor, formulation: str = "independent") -> Tensor:
    """[N, K-1] logits -> [N, K-1] probabilities ``P(rank > k)``."""
    _check_formulation(formulation)
    probas = torch.sigmoid(logits)
    if formulation == "corn":  # conditional P(r > k | r > k-1) -> marginal P(r > k)
        probas = torch.cumprod(probas, dim=1)
    return probas


def probabilities_to_months(probas: Tensor, rank_width_months: float) -> Tensor:
    """Expected rank ``sum_k P(rank > k)`` times the rank width: the predicted age in months."""
    return probas.sum(dim=1) * rank_width_months


def rank_interval_months(
    probas: Tensor, rank_width_months: float, coverage: float = 0.9
) -> tuple[Tensor, Tensor]:
    """The central ``coverage`` interval of the predicted rank distribution, in months.

    ``P(rank <= k) = 1 - P(rank > k)``; the ends are the smallest ranks whose cumulative
    probability reaches ``(1 - coverage) / 2`` and ``(1 + coverage) / 2`` (the first such rank:
    the independent formulation's probabilities need not be monotone). The model's own
    uncertainty, not calibrated: its empirical coverage is reported beside the conformal one.
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    probas = probas.float()
    cdf = torch.cat([1.0 - probas, torch.ones_like(probas[:, :1])], dim=1)  # [N, K]
    alpha = (1.0 - coverage) / 2.0

    def first_rank(level: float) -> Tensor:  # argmax: the first index of the maximum
        return torch.argmax((cdf >= level).float(), dim=1).float()

    return first_rank(alpha) * rank_width_months, first_rank(1.0 - alpha) * rank_width_months


def prior_level_logits(
    num_ranks: int,
    rank_width_months: float,
    mean_months: float,
    std_months: float,
    formulation: str = "independent",
) -> Tensor:
    """Output-bias logits under a logistic age prior with the given mean and std.

    Used to initialise output biases so an untrained head predicts the prior mean age with a
    calibrated spread, instead of ``(K-1)/2`` ranks. For ``corn`` the logits are of the
    conditional probabilities ``P(r > k) / P(r > k-1)``.
    """
    _check_formulation(formulation)
    scale = max(std_months, 1e-3) * math.sqrt(3.0) / math.pi  # logistic scale with that std
    k = torch.arange(num_ranks - 1, dtype=torch.float64)
    threshold_months = (k + 0.5) * rank_width_months
    logits = (mean_months - threshold_months) / scale
    if formulation == "corn":
        log_s = F.logsigmoid(logits)  # log P(r > k)
        log_cond = log_s - torch.cat([log_s.new_zeros(1), log_s[:-1]])
        cond = log_cond.exp().clamp(1e-6, 1 - 1e-6)
        logits = torch.log(cond) - torch.log1p(-cond)
    return logits.float()
