"""Anatomy of the synthetic hand phantom: a left hand, PA view, in millimetres.

Everything here is geometry in a *hand frame* (x towards the thumb, y towards the fingertips,
origin at the middle of the radiocarpal joint, units mm of an adult-sized hand). The renderer
(:mod:`boneage_d2.phantom.generator`) maps it to pixels with a random similarity transform, so the
hand's size in the image carries no age information.

Age enters only through the *maturity* value ``maturity_months`` (male-equivalent months, see
:func:`boneage_d2.phantom.generator.maturity_months`), and every feature is a smooth function of it:

- **epiphyses** (radius, ulna, metacarpals, phalanges) appear as small, faint ossification centres
  at their Greulich-Pyle times, grow in height and in width relative to the metaphysis (capping in
  early adolescence) and become denser;
- the **growth-plate gap** between epiphysis and metaphysis is wide when the epiphysis appears,
  narrows through childhood and closes (fuses, leaving a faint sclerotic line that fades) in late
  adolescence: distal phalanges first, the distal radius last;
- **carpal ossification centres** (8) and the adductor sesamoid of the thumb appear one by one and
  grow from round nuclei into larger, boxier bones;
- cartilage (dark joint spaces) dominates in infancy; bone shafts widen, become denser and the
  metaphyses flare with maturity; fingers lengthen mildly relative to the palm.

The soft-tissue outline depends on maturity only through mild proportions (finger length and
width, a few percent), smaller than the per-hand random variation of the same proportions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CARPALS",
    "MAX_MATURITY_MONTHS",
    "PHYSES",
    "HandModel",
    "HandVariation",
    "build_hand",
    "maturity_cues",
    "physis_state",
    "sample_hand_variation",
    "smoothstep",
]

# Bone-age scale of the phantom: ages and maturity live in [0, 228] months (RSNA's range).
MAX_MATURITY_MONTHS = 228.0

# Forearm below the wrist that belongs to the hand's nominal extent (mm); the forearm polygon
# itself continues far beyond so it leaves the image like in a real radiograph.
FOREARM_EXTENT_MM = 50.0
_FOREARM_FAR_MM = 600.0

# Growth-plate gap (mm) right after an epiphysis appears, and shortly before fusion starts. At a
# 256-px long side and the smallest zoom the hand frame is ~0.56 px/mm, so 4.5 mm is >= 2.5 px.
GAP_MAX_MM = 4.5
GAP_SMALL_BONE_MAX_MM = 4.0
GAP_LATE_MM = 1.4
# Half the adult joint space (mm); infants have up to 3 mm more cartilage on each side.
_ADULT_JOINT_HALF_MM = 1.0
# Overlap (mm) of epiphysis and metaphysis after fusion, so the two shapes merge into one bone.
FUSED_OVERLAP_MM = 0.8


def smoothstep(edge0: float, edge1: float, x: float) -> float:
    """Cubic Hermite step: 0 below ``edge0``, 1 above ``edge1``, smooth in between."""
    if edge1 <= edge0:
        return 1.0 if x >= edge1 else 0.0
    t = min(max((x - edge0) / (edge1 - edge0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def ease_out(edge0: float, edge1: float, x: float) -> float:
    """Growth curve: 0 below ``edge0``, fast at first, levelling off to 1 at ``edge1``."""
    if edge1 <= edge0:
        return 1.0 if x >= edge1 else 0.0
    t = min(max((x - edge0) / (edge1 - edge0), 0.0), 1.0)
    return 1.0 - (1.0 - t) ** 2


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
_PHYSIS_INDEX = {p.name: i for i, p in enumerate(PHYSES)}


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
_CARPAL_GROWTH_MONTHS = 110.0
_CARPAL_NUCLEUS_FRACTION = 0.22

# Rays: thumb, index, middle, ring, little. Metacarpal base (mm), length (mm), angle from the
# vertical (deg, positive towards the thumb), widths (base, shaft, head) in mm.
_MC_BASE = ((20.0, 32.5), (10.0, 40.0), (0.5, 41.0), (-9.5, 40.0), (-18.5, 37.0))
_MC_LEN = (44.0, 66.0, 63.0, 57.0, 52.0)
_MC_ANGLE = (38.0, 7.0, 0.0, -6.0, -12.0)
_MC_WIDTH = ((12.5, 9.0, 11.5), (11.0, 7.6, 11.5), (11.0, 7.8, 12.0), (9.5, 7.0, 11.0),
             (9.5, 6.8, 10.0))  # fmt: skip
# Phalanx segment lengths (joint to joint; distal: joint to bone tip) per ray.
_PP_LEN = (32.0, 40.0, 45.0, 42.0, 33.0)
_MP_LEN = (0.0, 24.0, 28.0, 27.0, 19.0)
_DP_LEN = (25.0, 18.0, 20.0, 20.0, 17.0)
# Phalanx widths (base, shaft, head).
_PP_WIDTH = ((11.5, 8.5, 10.0), (10.5, 7.5, 9.0), (11.0, 8.0, 9.3), (10.5, 7.5, 8.8),
             (9.5, 6.7, 8.0))  # fmt: skip
_MP_WIDTH = ((0, 0, 0), (9.0, 6.5, 7.5), (9.5, 6.9, 7.9), (9.1, 6.5, 7.5), (8.0, 5.6, 6.6))
_DP_WIDTH = ((9.5, 6.0, 7.2), (7.0, 4.5, 5.4), (7.4, 4.8, 5.8), (7.2, 4.6, 5.6), (6.6, 4.2, 5.0))
# Finger soft tissue width at the MCP and at the tip (mm); fingertip pad beyond the bone.
_FINGER_TISSUE = ((21.0, 18.0), (18.0, 15.0), (18.5, 15.5), (17.5, 14.5), (15.5, 13.0))
_TIP_PAD_MM = 5.5
# Maximum extra finger angle (deg) at full spread, per ray (thumb abducts most).
_SPREAD_DEG = (16.0, 7.0, 0.0, -7.0, -15.0)

_RADIUS_X, _ULNA_X = 11.0, -13.5
_RADIUS_JOINT_Y, _ULNA_JOINT_Y = 7.0, 4.5
_RADIUS_WIDTH = (13.0, 12.5, 25.0)  # far shaft, shaft, metaphysis (mm)
_ULNA_WIDTH = (9.0, 8.5, 12.0)
_FOREARM_FLARE_MM = (32.0, 24.0)  # radius, ulna


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


@dataclass
class HandModel:
    """A hand in hand-frame millimetres, ready to be rasterised.

    - ``tissue``: polygons whose union is the soft-tissue outline (the hand mask).
    - ``bones``: ``(polygon, density)``; density ~1 for mature cortical bone.
    - ``cortex_bands``: ``(polyline, thickness_mm)`` bright cortical bands along the shafts.
    - ``scars``: ``(p0, p1, thickness_mm, strength)`` fused-physis sclerotic lines.
    - ``keypoints``: ``(17, 2)`` canonical landmarks (see ``landmarks.CANONICAL_17``).
    - ``extent``: points whose bounding box is the hand's nominal extent (tips to 5 cm of forearm).
    - ``cues``: the maturity parameters that produced the picture (see :func:`maturity_cues`).
    """

    tissue: list[np.ndarray]
    bones: list[tuple[np.ndarray, float]]
    cortex_bands: list[tuple[np.ndarray, float]]
    scars: list[tuple[np.ndarray, np.ndarray, float, float]]
    keypoints: np.ndarray
    extent: np.ndarray
    cues: dict[str, float]


# ----------------------------------------------------------------------------------------------
# maturity functions


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


def _carpal_size(appear: float, maturity: float) -> float:
    """Carpal size as a fraction of adult size (0 before it appears)."""
    nucleus = smoothstep(appear - 2.0, appear + 8.0, maturity)
    growth = ease_out(appear, appear + _CARPAL_GROWTH_MONTHS, maturity)
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
    carpal_sizes = [_carpal_size(c.appear_months + float(j), maturity) for c, j in zip(CARPALS, cj)]
    area = sum(
        math.pi / 4 * c.size_mm[0] * c.size_mm[1] * k * k
        for c, k in zip(CARPALS, carpal_sizes)
        if k > 0.05
    )
    return {
        "maturity_months": float(maturity),
        "carpal_count": float(sum(k > 0.05 for k in carpal_sizes)),
        "carpal_area_mm2": float(area),
        "epiphysis_count": float(len(present)),
        "open_gap_mean_mm": float(np.mean(open_gaps)) if open_gaps else 0.0,
        "open_gap_max_mm": float(np.max(open_gaps)) if open_gaps else 0.0,
        "fused_count": float(sum(s.gap_mm <= 0.0 for s in states)),
        "width_ratio_mean": float(np.mean([s.width_ratio for s in present])) if present else 0.0,
        "sesamoid": float(_carpal_size(SESAMOID_APPEAR_MONTHS + float(cj[-1]), maturity) > 0.05),
    }


# ----------------------------------------------------------------------------------------------
# shape helpers (all in mm)


def _unit(angle_deg: float) -> np.ndarray:
    """Unit vector at ``angle_deg`` from the +y axis, positive towards +x."""
    a = math.radians(angle_deg)
    return np.array([math.sin(a), math.cos(a)])


def _perp(u: np.ndarray) -> np.ndarray:
    """Left normal of ``u``."""
    return np.array([-u[1], u[0]])


_U5 = np.linspace(0.0, 1.0, 5)
_U7 = np.linspace(0.0, 1.0, 7)
_TRIG_CACHE: dict[tuple[float, float, int], tuple[np.ndarray, np.ndarray]] = {}


def _trig(start: float, stop: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(sin, cos) of ``linspace(start, stop, n)``, cached (read-only arrays)."""
    key = (start, stop, n)
    if key not in _TRIG_CACHE:
        th = np.linspace(start, stop, n)
        sin, cos = np.sin(th), np.cos(th)
        sin.flags.writeable = False
        cos.flags.writeable = False
        _TRIG_CACHE[key] = (sin, cos)
    return _TRIG_CACHE[key]


def _cap_trig(n: int) -> tuple[np.ndarray, np.ndarray]:
    """sin/cos of the inner points of ``linspace(0, pi, n)``."""
    sin, cos = _trig(0.0, math.pi, n)
    return sin[1:-1], cos[1:-1]


def _half_widths(
    pos: np.ndarray, length: float, w0: float, ws: float, w1: float, f0: float, f1: float
) -> np.ndarray:
    """Half widths at ``pos`` (mm from the start): concave flares of lengths f0/f1 at the ends."""
    hw = np.full_like(pos, ws)
    m0 = pos < f0
    hw[m0] += (w0 - ws) * ((f0 - pos[m0]) / f0) ** 2.2
    m1 = pos > length - f1
    hw[m1] += (w1 - ws) * ((pos[m1] - (length - f1)) / f1) ** 2.2
    return hw / 2.0


def _flares(length: float, flare_mm: float | None) -> tuple[float, float]:
    f = 0.3 * length if flare_mm is None else min(flare_mm, 0.45 * length)
    return max(f, 1e-3), max(f, 1e-3)


def bone_polygon(
    p0: np.ndarray,
    p1: np.ndarray,
    widths: tuple[float, float, float],
    cap0: float,
    cap1: float,
    cap_exp: tuple[float, float] = (1.0, 1.0),
    flare_mm: float | None = None,
    n_cap: int = 9,
) -> np.ndarray:
    """Outline of a tubular bone from ``p0`` to ``p1`` (tips), widths (start, shaft, end).

    ``cap0``/``cap1`` are the heights of the end domes (0 = flat end); ``cap_exp`` < 1 makes a
    dome boxier; the ends flare over ``flare_mm`` (default 30% of the length). Returns an
    ``(N, 2)`` polygon.
    """
    d = p1 - p0
    length = float(np.hypot(*d))
    u = d / length
    v = _perp(u)
    s0 = min(cap0, 0.4 * length)
    s1 = min(cap1, 0.4 * length)
    inner = length - s0 - s1
    f0, f1 = _flares(inner, flare_mm)
    rel = np.concatenate([f0 * _U5, [0.5 * (f0 + inner - f1)], inner - f1 + f1 * _U5])
    hw = _half_widths(rel, inner, widths[0], widths[1], widths[2], f0, f1)
    pos = s0 + rel
    right = p0 + pos[:, None] * u - hw[:, None] * v
    left = p0 + pos[:, None] * u + hw[:, None] * v
    sin_th, cos_th = _cap_trig(n_cap)
    sin1 = sin_th ** cap_exp[1]
    cap_d = p0 + (length - s1 + s1 * sin1)[:, None] * u - (cos_th * hw[-1])[:, None] * v
    sin0 = sin_th ** cap_exp[0]
    cap_p = p0 + (s0 - s0 * sin0)[:, None] * u + (cos_th * hw[0])[:, None] * v
    return np.concatenate([right, cap_d, left[::-1], cap_p])


def epiphysis_polygon(
    face: np.ndarray,
    u_joint: np.ndarray,
    width: float,
    height: float,
    dome_exp: float = 0.5,
    skew: float = 0.0,
    n: int = 15,
) -> np.ndarray:
    """Outline of an epiphysis: flat-ish face on the physis at ``face``, dome towards the joint.

    ``u_joint`` is the unit vector from the physis to the joint; ``skew`` in [-1, 1] makes the
    dome taller on the ``-v`` side (radial styloid). Returns an ``(N, 2)`` polygon.
    """
    v = _perp(u_joint)
    sin_th, cos_th = _trig(0.0, math.pi, n)
    xs = cos_th * (width / 2.0)
    tall = height * (1.0 - skew * cos_th) * sin_th**dome_exp
    top = face + xs[:, None] * v + tall[:, None] * u_joint
    base_h = 0.12 * height
    bottom = face + (xs[::-1])[1:-1, None] * v - (base_h * sin_th[1:-1])[:, None] * u_joint
    return np.concatenate([top, bottom])


def superellipse(
    centre: np.ndarray, size: tuple[float, float], angle_deg: float, exponent: float, n: int = 24
) -> np.ndarray:
    """Closed superellipse outline (exponent 2 = ellipse, larger = boxier)."""
    s, c = _trig(0.0, 2.0 * math.pi * (n - 1) / n, n)
    e = 2.0 / exponent
    x = np.sign(c) * np.abs(c) ** e * size[0] / 2.0
    y = np.sign(s) * np.abs(s) ** e * size[1] / 2.0
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    return np.stack([centre[0] + ca * x - sa * y, centre[1] + sa * x + ca * y], axis=1)


def tapered_capsule(p0: np.ndarray, p1: np.ndarray, w0: float, w1: float, n: int = 8) -> np.ndarray:
    """Convex outline of a segment with round ends of diameters ``w0`` (at p0) and ``w1``."""
    d = p1 - p0
    length = float(np.hypot(*d))
    u = d / length
    v = _perp(u)
    sin_th, cos_th = _trig(-math.pi / 2, math.pi / 2, n)
    end1 = p1 + (w1 / 2) * (cos_th[:, None] * u - sin_th[:, None] * v)
    end0 = p0 + (w0 / 2) * (-cos_th[:, None] * u + sin_th[:, None] * v)
    return np.concatenate([end1, end0])


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Monotone-chain convex hull of ``(N, 2)`` points (counter-clockwise)."""
    pts = sorted({(float(x), float(y)) for x, y in points})
    if len(pts) <= 2:
        return np.array(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


# ----------------------------------------------------------------------------------------------
# the hand


class _Builder:
    def __init__(self, maturity: float, var: HandVariation):
        self.m = maturity
        self.var = var
        self.bones: list[tuple[np.ndarray, float]] = []
        self.bands: list[tuple[np.ndarray, float]] = []
        self.scars: list[tuple[np.ndarray, np.ndarray, float, float]] = []
        # Infant bones are thinner, less flared and less dense; joints are wide cartilage.
        self.width_factor = (0.78 + 0.22 * smoothstep(0.0, 150.0, maturity)) * var.bone_width_scale
        self.flare_factor = 0.45 + 0.55 * smoothstep(0.0, 120.0, maturity)
        self.density = 0.72 + 0.28 * smoothstep(0.0, 160.0, maturity)
        self.joint_half_mm = _ADULT_JOINT_HALF_MM + 3.0 * (1.0 - smoothstep(0.0, 48.0, maturity))
        self.cortex_frac = 0.12 + 0.1 * smoothstep(0.0, 160.0, maturity)

    def widths(self, w: tuple[float, float, float], meta_end: int) -> tuple[float, float, float]:
        """Scale adult widths; the metaphysis end (index 0 or 2) flares less in infants."""
        ws = w[1] * self.width_factor
        out = [w[0] * self.width_factor, ws, w[2] * self.width_factor]
        out[meta_end] = ws + (out[meta_end] - ws) * self.flare_factor
        return out[0], out[1], out[2]

    def long_bone(
        self,
        jp: np.ndarray,
        jd: np.ndarray,
        widths: tuple[float, float, float],
        physis: str | None,
        epi_end: str,
        far_cap: float,
        epi_dome: float = 0.45,
        epi_skew: float = 0.0,
        far_cap_exp: float = 0.9,
        flare_mm: float | None = None,
    ) -> None:
        """A tubular bone between joints ``jp`` (proximal) and ``jd`` with one epiphysis."""
        jh = self.joint_half_mm
        d = jd - jp
        length = float(np.hypot(*d))
        u = d / length
        a = jp + jh * u
        b = jd - jh * u
        meta_idx = 0 if epi_end == "prox" else 2
        w = self.widths(widths, meta_idx)
        w_meta = w[meta_idx]
        state = None
        if physis is not None:
            idx = _PHYSIS_INDEX[physis]
            state = physis_state(PHYSES[idx], self.m, float(self.var.physis_jitter_months[idx]))
        if state is None:
            p0, p1 = a, b
        elif epi_end == "prox":
            p0, p1 = a + (state.height_mm + state.gap_mm) * u, b
        else:
            p0, p1 = a, b - (state.height_mm + state.gap_mm) * u
        if epi_end == "prox":
            caps, exps = (0.25, far_cap), (0.35, far_cap_exp)
        else:
            caps, exps = (far_cap, 0.25), (far_cap_exp, 0.35)
        poly = bone_polygon(p0, p1, w, caps[0], caps[1], exps, flare_mm)
        self.bones.append((poly, self.density))
        # cortical bands along the diaphysis (the bright lines of a long bone's walls)
        v = _perp(u)
        blen = float(np.hypot(*(p1 - p0)))
        f0, f1 = _flares(blen, flare_mm)
        rel = 0.6 * f0 + (blen - 0.6 * f1 - 0.6 * f0) * _U7
        hw = _half_widths(rel, blen, w[0], w[1], w[2], f0, f1)
        thick = self.cortex_frac * w[1]
        off = hw - thick / 2.0
        for sign in (1.0, -1.0):
            line = p0 + rel[:, None] * u + sign * off[:, None] * v
            self.bands.append((line, thick))
        if state is None or not state.present:
            return
        width = w_meta * state.width_ratio
        if epi_end == "prox":
            face, u_joint = a + state.height_mm * u, -u
        else:
            face, u_joint = b - state.height_mm * u, u
        epi = epiphysis_polygon(face, u_joint, width, state.height_mm, epi_dome, epi_skew)
        self.bones.append((epi, self.density * state.density))
        if state.scar > 0.01:
            sp = face - u_joint * (0.5 * max(state.gap_mm, 0.0) + 0.2)
            self.scars.append((sp - 0.42 * w_meta * v, sp + 0.42 * w_meta * v, 0.7, state.scar))

    def blob(self, poly: np.ndarray, density: float) -> None:
        self.bones.append((poly, self.density * density))


def build_hand(maturity: float, var: HandVariation | None = None) -> HandModel:
    """Build the hand at ``maturity`` (male-equivalent months, 0-228) with variation ``var``.

    Returns a :class:`HandModel` in hand-frame millimetres (left hand, PA view, thumb at +x).
    """
    var = var if var is not None else HandVariation()
    m = float(np.clip(maturity, 0.0, MAX_MATURITY_MONTHS))
    bld = _Builder(m, var)
    px = var.palm_width_scale
    # Fingers are relatively short in infancy (mild, smaller than the per-hand variation).
    flen = var.finger_length_scale * (0.95 + 0.05 * smoothstep(0.0, 180.0, m))
    tissue_scale = var.tissue_width_scale * (1.06 - 0.06 * smoothstep(0.0, 120.0, m))

    keypoints = np.zeros((17, 2))
    tissue: list[np.ndarray] = []

    # forearm: radius and ulna (shafts leave the image), epiphyses at the distal ends
    far = -_FOREARM_FAR_MM
    rj = np.array([_RADIUS_X * px, _RADIUS_JOINT_Y])
    bld.long_bone(
        np.array([_RADIUS_X * px * 1.2, far]), rj, _RADIUS_WIDTH, "radius", "dist", 0.0,
        epi_dome=0.55, epi_skew=0.45, flare_mm=_FOREARM_FLARE_MM[0],
    )  # fmt: skip
    uj = np.array([_ULNA_X * px, _ULNA_JOINT_Y])
    bld.long_bone(
        np.array([_ULNA_X * px * 1.3, far]), uj, _ULNA_WIDTH, "ulna", "dist", 0.0, epi_dome=0.7,
        flare_mm=_FOREARM_FLARE_MM[1],
    )  # fmt: skip
    # landmark = middle of the adult epiphysis (joint space + half its height): the physis region
    keypoints[0] = rj - np.array([0.0, _ADULT_JOINT_HALF_MM + 0.5 * PHYSES[0].height_mm])
    keypoints[1] = uj - np.array([0.0, _ADULT_JOINT_HALF_MM + 0.5 * PHYSES[1].height_mm])

    # carpals
    for i, c in enumerate(CARPALS):
        appear = c.appear_months + float(var.carpal_jitter_months[i])
        k = _carpal_size(appear, m)
        if k <= 0.05:
            continue
        growth = ease_out(appear, appear + _CARPAL_GROWTH_MONTHS, m)
        size = (max(1.1 * c.size_mm[0] * k, 1.6), max(1.1 * c.size_mm[1] * k, 1.6))
        # nuclei are round, mature carpals are longer and boxier
        size = (
            size[0] + (1.0 - growth) * (min(size) - size[0]),
            size[1] + (1.0 - growth) * (min(size) - size[1]),
        )
        centre = np.array([c.centre_mm[0] * px, c.centre_mm[1]])
        poly = superellipse(centre, size, c.angle_deg, 2.0 + 0.9 * growth)
        bld.blob(poly, 0.6 + 0.4 * growth)
    keypoints[2] = np.array([CARPALS[0].centre_mm[0] * px, CARPALS[0].centre_mm[1]])

    # rays
    palm_pts: list[np.ndarray] = [
        np.array([-27.0 * px, -2.0]),
        np.array([27.0 * px, -2.0]),
        np.array([-28.0 * px, 8.0]),
        np.array([28.0 * px, 8.0]),
    ]
    kp_index = {0: (3, 4), 1: (5, 6, 7), 2: (8, 9, 10), 3: (11, 12, 13), 4: (14, 15, 16)}
    for r in range(5):
        base = np.array([_MC_BASE[r][0] * px, _MC_BASE[r][1]])
        u_mc = _unit(_MC_ANGLE[r] + (var.finger_angle_jitter_deg[r] * 0.3))
        jp = base - 0.5 * u_mc
        mcp = base + _MC_LEN[r] * u_mc
        mc_physis_end = "prox" if r == 0 else "dist"
        bld.long_bone(
            jp, mcp, _MC_WIDTH[r], f"mc{r + 1}", mc_physis_end, 3.2 if r == 0 else 1.5,
            epi_dome=0.45 if r == 0 else 0.95, far_cap_exp=0.8,
        )  # fmt: skip
        # finger chain
        ang = _MC_ANGLE[r] + var.spread * _SPREAD_DEG[r] + var.finger_angle_jitter_deg[r]
        joints = [mcp]
        lens = [_PP_LEN[r], _MP_LEN[r], _DP_LEN[r]] if r > 0 else [_PP_LEN[r], _DP_LEN[r]]
        names = ["pp", "mp", "dp"] if r > 0 else ["pp", "dp"]
        widths = [_PP_WIDTH[r], _MP_WIDTH[r], _DP_WIDTH[r]]
        if r == 0:  # the thumb has no middle phalanx
            widths = [_PP_WIDTH[r], _DP_WIDTH[r]]
        for j, (seg_len, nm, wid) in enumerate(zip(lens, names, widths)):
            ang_j = ang + var.flex_jitter_deg[r, j]
            u = _unit(ang_j)
            jd = joints[-1] + seg_len * flen * u
            is_distal = nm == "dp"
            bld.long_bone(
                joints[-1], jd, wid, f"{nm}{r + 1}", "prox",
                1.6 if is_distal else 1.8, far_cap_exp=0.6 if is_distal else 0.8,
            )  # fmt: skip
            joints.append(jd)
        for k, kp in enumerate(kp_index[r]):
            keypoints[kp] = joints[k]
        # adductor sesamoid of the thumb (adolescent cue), ulnar side of the MC1 head
        if r == 0:
            k = _carpal_size(SESAMOID_APPEAR_MONTHS + float(var.carpal_jitter_months[-1]), m)
            if k > 0.05:
                v = _perp(u_mc)
                centre = mcp - 3.0 * u_mc + 4.5 * v
                bld.blob(superellipse(centre, (4.2 * k, 4.6 * k), 0.0, 2.0), 0.85)
        # soft tissue of the finger
        w0, w1 = (w * tissue_scale for w in _FINGER_TISSUE[r])
        u_last = (joints[-1] - joints[-2]) / np.hypot(*(joints[-1] - joints[-2]))
        tip = joints[-1] + (_TIP_PAD_MM - 0.5 * w1) * u_last
        chain = [mcp - (0.25 if r > 0 else 0.6) * _MC_LEN[r] * u_mc, *joints[:-1], tip]
        n_seg = len(chain) - 1
        for k in range(n_seg):
            wa = w0 + (w1 - w0) * (k / n_seg) + (1.0 if 0 < k else 0.0)
            wb = w0 + (w1 - w0) * ((k + 1) / n_seg) + (1.0 if k + 1 < n_seg else 0.0)
            tissue.append(tapered_capsule(chain[k], chain[k + 1], wa, wb))
        # palm hull points: finger webs, hypothenar and thenar eminences
        u_f = _unit(ang)
        v_f = _perp(u_f)
        web = mcp + 0.28 * _PP_LEN[r] * flen * u_f
        if r == 1:
            palm_pts.append(web - 0.5 * w0 * v_f)
        if r == 4:
            palm_pts.append(web + 0.5 * w0 * v_f)
            v_mc = _perp(u_mc)
            for t, off in ((0.1, 11.0), (0.45, 10.5), (0.8, 9.0)):
                palm_pts.append(base + t * _MC_LEN[r] * u_mc + off * v_mc)
        if r in (2, 3):
            palm_pts.append(web)
        if r == 0:
            v_mc = _perp(u_mc)
            for t, off in ((0.0, -8.0), (0.45, -9.0), (0.85, -7.0)):
                palm_pts.append(base + t * _MC_LEN[r] * u_mc + off * v_mc)
            palm_pts.append(mcp + 0.15 * _PP_LEN[r] * u_f + 0.4 * w0 * v_f)
    tissue.append(_convex_hull(np.array(palm_pts)))
    # forearm: widens a little towards the elbow and leaves the image
    forearm = np.array(
        [
            [-28.5 * px, 2.0],
            [-30.0 * px, -60.0],
            [-36.0 * px, far],
            [36.0 * px, far],
            [31.0 * px, -60.0],
            [29.5 * px, 2.0],
        ]
    )
    tissue.append(forearm)

    extent_pts = [p for poly in tissue for p in poly if p[1] >= -FOREARM_EXTENT_MM]
    extent_pts += [
        np.array([-29.0 * px, -FOREARM_EXTENT_MM]),
        np.array([29.0 * px, -FOREARM_EXTENT_MM]),
    ]
    extent = np.array(extent_pts)
    return HandModel(
        tissue=tissue,
        bones=bld.bones,
        cortex_bands=bld.bands,
        scars=bld.scars,
        keypoints=keypoints,
        extent=extent,
        cues=maturity_cues(m, var),
    )
