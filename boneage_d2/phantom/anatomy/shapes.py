"""2-D outlines in hand-frame millimetres: tubular bones, epiphyses, carpals, soft tissue."""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "bone_polygon",
    "convex_hull",
    "epiphysis_polygon",
    "perp",
    "segment",
    "shaft_walls",
    "superellipse",
    "tapered_capsule",
    "unit",
]

_U5 = np.linspace(0.0, 1.0, 5)
_U7 = np.linspace(0.0, 1.0, 7)
_TRIG_CACHE: dict[tuple[float, float, int], tuple[np.ndarray, np.ndarray]] = {}


def unit(angle_deg: float) -> np.ndarray:
    """Unit vector at ``angle_deg`` from the +y axis, positive towards +x."""
    a = math.radians(angle_deg)
    return np.array([math.sin(a), math.cos(a)])


def perp(u: np.ndarray) -> np.ndarray:
    """Left normal of ``u``."""
    return np.array([-u[1], u[0]])


def segment(p0: np.ndarray, p1: np.ndarray) -> tuple[float, np.ndarray]:
    """Length of the segment ``p0 -> p1`` and its unit direction."""
    d = p1 - p0
    length = float(np.hypot(*d))
    return length, d / length


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
    """Flare lengths at both ends: ``flare_mm`` (at most 45% of the length) or 30% of it."""
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
    length, u = segment(p0, p1)
    v = perp(u)
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


def shaft_walls(
    p0: np.ndarray,
    p1: np.ndarray,
    u: np.ndarray,
    widths: tuple[float, float, float],
    thickness: float,
    flare_mm: float | None = None,
) -> list[np.ndarray]:
    """The two cortical walls of the shaft ``p0 -> p1`` (direction ``u``), as polylines.

    They run just inside the outline of :func:`bone_polygon` (flat ends), ``thickness`` wide.
    """
    v = perp(u)
    blen = float(np.hypot(*(p1 - p0)))
    f0, f1 = _flares(blen, flare_mm)
    rel = 0.6 * f0 + (blen - 0.6 * f1 - 0.6 * f0) * _U7
    hw = _half_widths(rel, blen, widths[0], widths[1], widths[2], f0, f1)
    off = hw - thickness / 2.0
    return [p0 + rel[:, None] * u + sign * off[:, None] * v for sign in (1.0, -1.0)]


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
    v = perp(u_joint)
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
    _, u = segment(p0, p1)
    v = perp(u)
    sin_th, cos_th = _trig(-math.pi / 2, math.pi / 2, n)
    end1 = p1 + (w1 / 2) * (cos_th[:, None] * u - sin_th[:, None] * v)
    end0 = p0 + (w0 / 2) * (-cos_th[:, None] * u + sin_th[:, None] * v)
    return np.concatenate([end1, end0])


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Monotone-chain convex hull of ``(N, 2)`` points (counter-clockwise)."""
    pts = sorted({(float(x), float(y)) for x, y in points})
    if len(pts) <= 2:
        return np.array(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def chain(seq: list) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = chain(pts), chain(list(reversed(pts)))
    return np.array(lower[:-1] + upper[:-1])
