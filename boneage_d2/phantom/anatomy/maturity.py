"""Maturity timelines of the phantom's bones: when each growth plate and carpal centre appears,
grows and fuses, in male-equivalent months (Greulich-Pyle-like).

Girls mature earlier, so :func:`maturity_months` maps age and sex onto this one male scale; every
feature of the skeleton is then a smooth function of that maturity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .variation import HandVariation

__all__ = [
    "CARPALS",
    "MAX_MATURITY_MONTHS",
    "PHYSES",
    "PHYSIS_INDEX",
    "SESAMOID_APPEAR_MONTHS",
    "VISIBLE_SIZE",
    "CarpalSpec",
    "PhysisSpec",
    "PhysisState",
    "carpal_growth",
    "carpal_size",
    "ease_out",
    "maturity_cues",
    "maturity_months",
    "physis_state",
    "smoothstep",
]

# Bone-age scale of the phantom: ages and maturity live in [0, 228] months (RSNA's range).
MAX_MATURITY_MONTHS = 228.0

# Growth-plate gap (mm) right after an epiphysis appears, and shortly before fusion starts. At a
# 256-px long side and the smallest zoom the hand frame is ~0.56 px/mm, so 4.5 mm is >= 2.5 px.
GAP_MAX_MM = 4.5
GAP_SMALL_BONE_MAX_MM = 4.0
GAP_LATE_MM = 1.4
# Overlap (mm) of epiphysis and metaphysis after fusion, so the two shapes merge into one bone.
FUSED_OVERLAP_MM = 0.8

_CARPAL_GROWTH_MONTHS = 110.0
_CARPAL_NUCLEUS_FRACTION = 0.22
# A carpal centre (or the sesamoid) is drawn and counted above this fraction of its adult size.
VISIBLE_SIZE = 0.05


def _ramp(edge0: float, edge1: float, x: float) -> float:
    """``x`` mapped linearly onto [0, 1] between the edges (a step at ``edge1`` if degenerate)."""
    if edge1 <= edge0:
        return 1.0 if x >= edge1 else 0.0
    return min(max((x - edge0) / (edge1 - edge0), 0.0), 1.0)


def smoothstep(edge0: float, edge1: float, x: float) -> float:
    """Cubic Hermite step: 0 below ``edge0``, 1 above ``edge1``, smooth in between."""
    t = _ramp(edge0, edge1, x)
    return t * t * (3.0 - 2.0 * t)


def ease_out(edge0: float, edge1: float, x: float) -> float:
    """Growth curve: 0 below ``edge0``, fast at first, levelling off to 1 at ``edge1``."""
    t = _ramp(edge0, edge1, x)
    return 1.0 - (1.0 - t) ** 2


def maturity_months(age_months: float, male: bool, female_factor: float = 1.12) -> float:
    """Skeletal maturity in male-equivalent months: what the bones of this child show.

    Boys: the age itself. Girls mature earlier: ``age * female_factor`` (default 1.12), clipped to
    228 months, so a girl of 120 months shows the bones of a boy of ~134 months.
    """
    m = float(age_months) * (1.0 if male else float(female_factor))
    return float(min(max(m, 0.0), MAX_MATURITY_MONTHS))


@dataclass(frozen=True)
class PhysisSpec:
    """Timeline of one growth plate, in male-equivalent months (Greulich-Pyle-like)."""

    name: str
    appear_months: float  # ossification centre of the epiphysis appears
    fuse_months: float  # growth plate closed
    height_mm: float  # adult epiphysis height along the bone axis
    gap_max_mm: float = GAP_MAX_MM


# Order: radius, ulna, metacarpals 1-5, proximal phalanges 1-5, middle 2-5, distal 1-5.
PHYSES: tuple[PhysisSpec, ...] = (
    PhysisSpec("radius", 14, 208, 8.0),
    PhysisSpec("ulna", 84, 200, 5.5),
    PhysisSpec("mc1", 32, 182, 5.0),
    PhysisSpec("mc2", 20, 182, 8.5),
    PhysisSpec("mc3", 22, 182, 8.5),
    PhysisSpec("mc4", 26, 182, 8.0),
    PhysisSpec("mc5", 30, 182, 7.5),
    PhysisSpec("pp1", 26, 180, 5.0),
    PhysisSpec("pp2", 18, 180, 4.8),
    PhysisSpec("pp3", 18, 180, 5.0),
    PhysisSpec("pp4", 20, 180, 4.8),
    PhysisSpec("pp5", 24, 180, 4.4),
    PhysisSpec("mp2", 32, 184, 3.8, GAP_SMALL_BONE_MAX_MM),
    PhysisSpec("mp3", 30, 184, 4.0, GAP_SMALL_BONE_MAX_MM),
    PhysisSpec("mp4", 32, 184, 3.9, GAP_SMALL_BONE_MAX_MM),
    PhysisSpec("mp5", 40, 184, 3.5, GAP_SMALL_BONE_MAX_MM),
    PhysisSpec("dp1", 20, 168, 4.0, GAP_SMALL_BONE_MAX_MM),
    PhysisSpec("dp2", 32, 170, 3.4, GAP_SMALL_BONE_MAX_MM),
    PhysisSpec("dp3", 32, 170, 3.5, GAP_SMALL_BONE_MAX_MM),
    PhysisSpec("dp4", 34, 170, 3.5, GAP_SMALL_BONE_MAX_MM),
    PhysisSpec("dp5", 40, 170, 3.2, GAP_SMALL_BONE_MAX_MM),
)
PHYSIS_INDEX = {p.name: i for i, p in enumerate(PHYSES)}


@dataclass(frozen=True)
class CarpalSpec:
    """One carpal ossification centre: appearance time (male months), adult size and place."""

    name: str
    appear_months: float
    centre_mm: tuple[float, float]
    size_mm: tuple[float, float]  # adult (width, height)
    angle_deg: float


CARPALS: tuple[CarpalSpec, ...] = (
    CarpalSpec("capitate", 3, (1.0, 27.0), (13.0, 20.0), 0.0),
    CarpalSpec("hamate", 5, (-11.5, 26.5), (11.0, 17.0), -12.0),
    CarpalSpec("triquetrum", 30, (-17.0, 14.5), (10.5, 9.0), 20.0),
    CarpalSpec("lunate", 42, (-4.0, 13.0), (12.0, 10.0), 0.0),
    CarpalSpec("trapezium", 66, (20.0, 28.0), (11.0, 11.0), 25.0),
    CarpalSpec("scaphoid", 68, (11.5, 14.5), (9.5, 17.0), -55.0),
    CarpalSpec("trapezoid", 74, (11.0, 31.0), (9.0, 9.0), 0.0),
    CarpalSpec("pisiform", 132, (-20.0, 18.0), (7.0, 7.0), 0.0),
)
SESAMOID_APPEAR_MONTHS = 156.0


@dataclass(frozen=True)
class PhysisState:
    """Geometry of one growth plate at a given maturity (mm, unitless ratios)."""

    present: bool  # epiphysis ossified (visible)
    height_mm: float  # epiphysis height along the bone axis
    gap_mm: float  # growth-plate gap; <= 0 once fused
    width_ratio: float  # epiphysis width / metaphysis width
    density: float  # epiphysis density (0..1)
    scar: float  # strength of the fusion line (0..1)


def physis_state(spec: PhysisSpec, maturity: float, jitter_months: float = 0.0) -> PhysisState:
    """State of growth plate ``spec`` at ``maturity`` (male-equivalent months).

    The gap is ``gap_max`` when the epiphysis appears, narrows to ~1.4 mm two years before
    fusion, closes at ``fuse_months`` and turns into a small overlap (fused bone) after it.
    """
    a = spec.appear_months + jitter_months
    f = spec.fuse_months + jitter_months
    m = maturity
    appear = smoothstep(a - 3.0, a + 9.0, m)
    grow = ease_out(a, a + max(48.0, 0.6 * (f - a)), m)
    height = spec.height_mm * (0.25 * appear + 0.75 * grow)
    gap = spec.gap_max_mm + 0.25 * spec.height_mm * (1.0 - appear)
    gap *= 1.0 - (1.0 - GAP_LATE_MM / spec.gap_max_mm) * smoothstep(a, f - 24.0, m)
    gap *= 1.0 - smoothstep(f - 24.0, f, m)
    gap -= FUSED_OVERLAP_MM * smoothstep(f - 6.0, f + 6.0, m)
    capping = 0.07 * smoothstep(f - 50.0, f - 20.0, m) * (1.0 - smoothstep(f - 6.0, f + 10.0, m))
    width_ratio = 0.4 + 0.6 * ease_out(a, a + 0.55 * (f - a), m) + capping
    density = appear * (0.55 + 0.45 * smoothstep(a, a + 48.0, m))
    scar = smoothstep(f - 6.0, f + 4.0, m) * (1.0 - smoothstep(f + 8.0, f + 40.0, m))
    return PhysisState(height > 0.35, height, gap, width_ratio, density, scar)


def carpal_growth(appear: float, maturity: float) -> float:
    """Growth of a carpal centre since it appeared at ``appear`` months (0..1)."""
    return ease_out(appear, appear + _CARPAL_GROWTH_MONTHS, maturity)


def carpal_size(appear: float, maturity: float) -> float:
    """Carpal size as a fraction of adult size (0 before it appears)."""
    nucleus = smoothstep(appear - 2.0, appear + 8.0, maturity)
    growth = carpal_growth(appear, maturity)
    return nucleus * (_CARPAL_NUCLEUS_FRACTION + (1.0 - _CARPAL_NUCLEUS_FRACTION) * growth)


def maturity_cues(maturity: float, variation: HandVariation | None = None) -> dict[str, float]:
    """Scalar summaries of the bone-age cues at ``maturity`` (male-equivalent months).

    Returns ``carpal_count`` (ossified carpal centres, 0-8), ``carpal_area_mm2`` (their total
    area), ``epiphysis_count`` (ossified epiphyses, 0-21), ``open_gap_mean_mm`` and
    ``open_gap_max_mm`` (mean and widest gap of the open, ossified growth plates; 0 when none),
    ``fused_count`` (closed plates, 0-21),
    ``width_ratio_mean`` (mean epiphysis/metaphysis width over ossified plates) and
    ``sesamoid`` (1 once the thumb sesamoid is visible).
    """
    pj = variation.physis_jitter_months if variation is not None else np.zeros(len(PHYSES))
    cj = variation.carpal_jitter_months if variation is not None else np.zeros(len(CARPALS) + 1)
    states = [physis_state(s, maturity, float(j)) for s, j in zip(PHYSES, pj)]
    present = [s for s in states if s.present]
    open_gaps = [s.gap_mm for s in present if s.gap_mm > 0.05]
    carpal_sizes = [carpal_size(c.appear_months + float(j), maturity) for c, j in zip(CARPALS, cj)]
    area = sum(
        math.pi / 4 * c.size_mm[0] * c.size_mm[1] * k * k
        for c, k in zip(CARPALS, carpal_sizes)
        if k > VISIBLE_SIZE
    )
    sesamoid = carpal_size(SESAMOID_APPEAR_MONTHS + float(cj[-1]), maturity)
    return {
        "maturity_months": float(maturity),
        "carpal_count": float(sum(k > VISIBLE_SIZE for k in carpal_sizes)),
        "carpal_area_mm2": float(area),
        "epiphysis_count": float(len(present)),
        "open_gap_mean_mm": float(np.mean(open_gaps)) if open_gaps else 0.0,
        "open_gap_max_mm": float(np.max(open_gaps)) if open_gaps else 0.0,
        "fused_count": float(sum(s.gap_mm <= 0.0 for s in states)),
        "width_ratio_mean": float(np.mean([s.width_ratio for s in present])) if present else 0.0,
        "sesamoid": float(sesamoid > VISIBLE_SIZE),
    }
