"""Who is pictured: the child's sex and appearance age, and the label a reader gives."""

from __future__ import annotations

import numpy as np

from .config import PhantomConfig

__all__ = ["draw_label", "draw_subject"]


def draw_subject(cfg: PhantomConfig, rng: np.random.Generator) -> tuple[bool, float]:
    """Draw ``(male, appearance_age_months)``: sex with ``male_prob``, age from the configured
    distribution (normal ``age_mean_months`` +- ``age_sd_months`` clipped, or uniform)."""
    male = bool(rng.random() < cfg.male_prob)
    if cfg.age_distribution == "uniform":
        return male, float(rng.uniform(cfg.age_min_months, cfg.age_max_months))
    age = float(rng.normal(cfg.age_mean_months, cfg.age_sd_months))
    return male, float(np.clip(age, cfg.age_min_months, cfg.age_max_months))


def draw_label(cfg: PhantomConfig, rng: np.random.Generator, appearance_age: float) -> float:
    """The label a reader would give: ``appearance_age + N(0, label_noise_months)``, clipped.

    Clipped to ``[age_min_months, age_max_months]``; no draw is made when the noise is 0.
    """
    noise = float(rng.normal(0.0, cfg.label_noise_months)) if cfg.label_noise_months > 0 else 0.0
    return float(np.clip(appearance_age + noise, cfg.age_min_months, cfg.age_max_months))
