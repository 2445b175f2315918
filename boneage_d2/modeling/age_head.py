"""Age heads: a fusion MLP followed by an ordinal or a regression predictor.

Both heads share one interface, so any meta-architecture can use either by config
(``BONEAGE.HEAD.NAME``):

- ``forward(features [N, D]) -> outputs`` (raw: logits or normalised ages),
- ``losses(outputs, age_months [N]) -> Tensor`` (scalar, already weighted),
- ``predict_months(outputs) -> Tensor [N]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.utils.registry import Registry
from torch import Tensor, nn

from .ordinal import (
    FORMULATIONS,
    age_to_rank,
    ordinal_loss,
    ordinal_probabilities,
    prior_level_logits,
    probabilities_to_months,
    rank_interval_months,
)

__all__ = ["AGE_HEAD_REGISTRY", "build_age_head", "OrdinalAgeHead", "RegressionAgeHead", "mlp"]

AGE_HEAD_REGISTRY = Registry("AGE_HEAD")
AGE_HEAD_REGISTRY.__doc__ = """Registry for bone-age heads (feature vector -> age in months)."""

REGRESSION_LOSSES = ("l1", "l2", "smooth_l1")


def mlp(in_dim: int, hidden_dims: list[int], dropout: float = 0.0) -> tuple[nn.Sequential, int]:
    """Linear + ReLU (+ Dropout) layers; returns the module and its output width."""
    layers: list[nn.Module] = []
    for dim in hidden_dims:
        layers += [nn.Linear(in_dim, dim), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = dim
    return nn.Sequential(*layers), in_dim


def _head_args(cfg, in_dim: int) -> dict:
    return {
        "in_dim": in_dim,
        "hidden_dims": list(cfg.BONEAGE.HEAD.HIDDEN_DIMS),
        "dropout": cfg.BONEAGE.HEAD.DROPOUT,
        "loss_weight": cfg.BONEAGE.HEAD.LOSS_WEIGHT,
        "mean_months": cfg.BONEAGE.AGE_MEAN_MONTHS,
        "std_months": cfg.BONEAGE.AGE_STD_MONTHS,
    }


@AGE_HEAD_REGISTRY.register()
class OrdinalAgeHead(nn.Module):
    """MLP + ``K-1`` ordinal logits (ALA-Net). Predicted age = ``width * sum_k P(rank > k)``."""

    @configurable
    def __init__(
        self,
        *,
        in_dim: int,
        hidden_dims: list[int],
        num_ranks: int,
        rank_width_months: float,
        formulation: str = "independent",
        dropout: float = 0.0,
        loss_weight: float = 1.0,
        mean_months: float = 127.0,
        std_months: float = 42.0,
    ):
        super().__init__()
        if formulation not in FORMULATIONS:
            raise ValueError(
                f"BONEAGE.ORDINAL.FORMULATION={formulation!r}; expected one of {FORMULATIONS}"
            )
        if num_ranks < 2:
            raise ValueError(f"BONEAGE.ORDINAL.NUM_RANKS must be >= 2, got {num_ranks}")
        self.num_ranks = num_ranks
        self.rank_width_months = rank_width_months
        self.formulation = formulation
        self.loss_weight = loss_weight
        self.mlp, out_dim = mlp(in_dim, hidden_dims, dropout)
        prior = prior_level_logits(
            num_ranks, rank_width_months, mean_months, std_months, formulation
        )
        if formulation == "coral":
            self.fc = nn.Linear(out_dim, 1, bias=False)
            self.level_bias = nn.Parameter(prior.clone())
        else:
            self.fc = nn.Linear(out_dim, num_ranks - 1)
            with torch.no_grad():
                self.fc.bias.copy_(prior)
            self.level_bias = None

    @classmethod
    def from_config(cls, cfg, in_dim: int) -> dict:
        return {
            **_head_args(cfg, in_dim),
            "num_ranks": cfg.BONEAGE.ORDINAL.NUM_RANKS,
            "rank_width_months": cfg.BONEAGE.ORDINAL.RANK_WIDTH_MONTHS,
            "formulation": cfg.BONEAGE.ORDINAL.FORMULATION,
        }

    def forward(self, x: Tensor) -> Tensor:
        """[N, in_dim] -> [N, K-1] logits."""
        logits = self.fc(self.mlp(x))
        if self.level_bias is not None:
            logits = logits + self.level_bias
        return logits

    def losses(self, logits: Tensor, age_months: Tensor) -> Tensor:
        rank = age_to_rank(age_months, self.rank_width_months, self.num_ranks)
        return self.loss_weight * ordinal_loss(logits, rank, self.formulation)

    def predict_months(self, logits: Tensor) -> Tensor:
        probas = ordinal_probabilities(logits, self.formulation)
        return probabilities_to_months(probas, self.rank_width_months)

    def predict_interval(self, logits: Tensor, coverage: float) -> tuple[Tensor, Tensor]:
        """``(lo, hi)`` months: the central ``coverage`` interval of the rank probabilities."""
        probas = ordinal_probabilities(logits, self.formulation)
        return rank_interval_months(probas, self.rank_width_months, coverage)


@AGE_HEAD_REGISTRY.register()
class RegressionAgeHead(nn.Module):
    """MLP + one output: the normalised age ``(age - mean) / std``.

    The loss (``l1`` by default, ``l2`` or ``smooth_l1``) is computed in normalised units, i.e.
    months divided by ``std_months``, so its scale is comparable to the detection losses.
    Predicted ages are clipped to ``age_range_months`` (``BONEAGE.HEAD.AGE_RANGE_MONTHS``).
    """

    @configurable
    def __init__(
        self,
        *,
        in_dim: int,
        hidden_dims: list[int],
        loss: str = "l1",
        dropout: float = 0.0,
        loss_weight: float = 1.0,
        mean_months: float = 127.0,
        std_months: float = 42.0,
        age_range_months: tuple[float, float] | tuple[()] = (0.0, 240.0),
    ):
        super().__init__()
        if len(age_range_months) not in (0, 2) or (
            age_range_months and age_range_months[0] >= age_range_months[1]
        ):
            raise ValueError(
                f"BONEAGE.HEAD.AGE_RANGE_MONTHS={tuple(age_range_months)}; expected (low, high) "
                "with low < high, or () for no clipping"
            )
        self.age_range_months = tuple(float(v) for v in age_range_months)
        if loss not in REGRESSION_LOSSES:
            raise ValueError(
                f"BONEAGE.HEAD.REGRESSION_LOSS={loss!r}; expected one of {REGRESSION_LOSSES}"
            )
        self.loss = loss
        self.loss_weight = loss_weight
        self.mean_months = mean_months
        self.std_months = std_months
        self.mlp, out_dim = mlp(in_dim, hidden_dims, dropout)
        self.fc = nn.Linear(out_dim, 1)
        nn.init.zeros_(self.fc.bias)

    @classmethod
    def from_config(cls, cfg, in_dim: int) -> dict:
        return {
            **_head_args(cfg, in_dim),
            "loss": cfg.BONEAGE.HEAD.REGRESSION_LOSS,
            "age_range_months": tuple(cfg.BONEAGE.HEAD.AGE_RANGE_MONTHS),
        }

    def forward(self, x: Tensor) -> Tensor:
        """[N, in_dim] -> [N] normalised ages."""
        return self.fc(self.mlp(x)).squeeze(1)

    def losses(self, outputs: Tensor, age_months: Tensor) -> Tensor:
        target = (age_months.float() - self.mean_months) / self.std_months
        fn = {"l1": F.l1_loss, "l2": F.mse_loss, "smooth_l1": F.smooth_l1_loss}[self.loss]
        return self.loss_weight * fn(outputs, target)

    def predict_months(self, outputs: Tensor) -> Tensor:
        months = outputs * self.std_months + self.mean_months
        return months.clamp(*self.age_range_months) if self.age_range_months else months


def build_age_head(cfg, in_dim: int) -> nn.Module:
    """Build ``cfg.BONEAGE.HEAD.NAME`` from AGE_HEAD_REGISTRY for features of width ``in_dim``."""
    name = cfg.BONEAGE.HEAD.NAME
    if name not in AGE_HEAD_REGISTRY:
        raise KeyError(
            f"BONEAGE.HEAD.NAME={name!r} is not a registered age head; "
            f"registered: {sorted(k for k, _ in AGE_HEAD_REGISTRY)}"
        )
    return AGE_HEAD_REGISTRY.get(name)(cfg, in_dim)
