"""Per-hand random variation that does not depend on age: pose, proportions, bone timing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .maturity import CARPALS, PHYSES

__all__ = ["HandVariation", "sample_hand_variation"]


@dataclass
class HandVariation:
    """Per-hand random variation that does not depend on age (pose, proportions, timing)."""

    spread: float = 0.5  # 0 = fingers together, 1 = fully spread
    finger_angle_jitter_deg: np.ndarray = field(default_factory=lambda: np.zeros(5))
    flex_jitter_deg: np.ndarray = field(default_factory=lambda: np.zeros((5, 3)))
    finger_length_scale: float = 1.0
    palm_width_scale: float = 1.0
    tissue_width_scale: float = 1.0
    bone_width_scale: float = 1.0
    physis_jitter_months: np.ndarray = field(default_factory=lambda: np.zeros(len(PHYSES)))
    # one per carpal, then the thumb sesamoid
    carpal_jitter_months: np.ndarray = field(default_factory=lambda: np.zeros(len(CARPALS) + 1))


def sample_hand_variation(
    rng: np.random.Generator, timing_jitter_months: float = 4.0
) -> HandVariation:
    """Draw a :class:`HandVariation` (pose and proportions independent of age).

    ``timing_jitter_months`` is the standard deviation of each bone's own appearance/fusion time
    around the population timeline (biological variation between bones of one hand).
    """
    return HandVariation(
        spread=float(rng.uniform(0.0, 1.0)),
        finger_angle_jitter_deg=rng.normal(0.0, 2.0, size=5),
        flex_jitter_deg=rng.normal(0.0, 2.5, size=(5, 3)),
        finger_length_scale=float(rng.normal(1.0, 0.04)),
        palm_width_scale=float(rng.normal(1.0, 0.035)),
        tissue_width_scale=float(rng.normal(1.0, 0.05)),
        bone_width_scale=float(rng.normal(1.0, 0.04)),
        physis_jitter_months=rng.normal(0.0, timing_jitter_months, size=len(PHYSES)),
        carpal_jitter_months=rng.normal(0.0, timing_jitter_months, size=len(CARPALS) + 1),
    )
