"""Calibrated bone-age prediction intervals: split conformal on absolute residuals.

On a held-out calibration split with ``n`` (predicted, true) pairs, the half-width is the
``ceil((n+1)(1-alpha)) / n`` empirical quantile of ``|pred - true|``; the interval
``pred +- q`` then covers a new exchangeable image's true age with probability >= 1-alpha.
``method="band"`` computes one quantile per band of the *predicted* age (the only age known at
prediction time), which adapts the width to where the model is worse; a band with too few
calibration images for its finite-sample quantile falls back to the global one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_json

__all__ = [
    "INTERVAL_METHODS",
    "IntervalCalibrationError",
    "apply_calibration",
    "calibrate_intervals",
    "calibration_for_config",
    "conformal_quantile",
    "interval_metrics",
    "load_calibration",
    "sidecar_path",
    "write_calibration",
]

INTERVAL_METHODS = ("global", "band")
SIDECAR_SUFFIX = ".intervals.json"


class IntervalCalibrationError(ValueError):
    """A missing, malformed or mismatched interval calibration; the message names the file."""


def conformal_quantile(abs_residuals: Sequence[float], coverage: float) -> float:
    """The split-conformal half-width: the ``ceil((n+1) * coverage)``-th smallest residual
    (``inf`` when that rank exceeds ``n``: too few calibration points for this coverage)."""
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    r = np.sort(np.abs(np.asarray(abs_residuals, dtype=np.float64)))
    n = len(r)
    k = math.ceil((n + 1) * coverage)
    return float(r[k - 1]) if 1 <= k <= n else math.inf


def _band_index(pred: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Band of each predicted age: ``i`` for ``edges[i] <= pred < edges[i+1]``; ages outside the
    edges go to the first / last band."""
    return np.clip(np.searchsorted(np.asarray(edges), pred, side="right") - 1, 0, len(edges) - 2)


def calibrate_intervals(
    pred_months: Sequence[float],
    true_months: Sequence[float],
    *,
    coverage: float = 0.9,
    method: str = "global",
    band_edges: Sequence[float] = (0, 24, 60, 120, 180, 240),
) -> dict:
    """The calibration (plain data, the sidecar's core): ``method``, ``coverage``, ``n``,
    ``quantile_months`` (global) and, for ``band``, ``band_edges_months``,
    ``band_quantiles_months`` and ``band_counts``."""
    if method not in INTERVAL_METHODS:
        raise ValueError(f"interval method {method!r}; expected one of {INTERVAL_METHODS}")
    p = np.asarray(pred_months, dtype=np.float64)
    t = np.asarray(true_months, dtype=np.float64)
    if len(p) != len(t) or len(p) == 0:
        raise ValueError(
            f"need equal, non-zero numbers of predictions and labels: {len(p)}, {len(t)}"
        )
    res = np.abs(p - t)
    q = conformal_quantile(res, coverage)
    if not math.isfinite(q):
        raise ValueError(f"{len(p)} calibration images are too few for coverage {coverage}")
    out = {"method": method, "coverage": coverage, "n": len(p), "quantile_months": q}
    if method == "band":
        if len(band_edges) < 2 or list(band_edges) != sorted(band_edges):
            raise ValueError(f"band edges must be >= 2 increasing ages, got {list(band_edges)}")
        idx = _band_index(p, band_edges)
        counts = [int((idx == b).sum()) for b in range(len(band_edges) - 1)]
        qs = [conformal_quantile(res[idx == b], coverage) for b in range(len(counts))]
        out["band_edges_months"] = [float(e) for e in band_edges]
        out["band_quantiles_months"] = [x if math.isfinite(x) else q for x in qs]
        out["band_counts"] = counts
    return out


def apply_calibration(calibration: dict, pred_months: Sequence[float]) -> tuple[np.ndarray, ...]:
    """``(lo, hi)`` interval ends (months, lower end clipped at 0) for the predicted ages."""
    p = np.asarray(pred_months, dtype=np.float64)
    if calibration["method"] == "band":
        qs = np.asarray(calibration["band_quantiles_months"], dtype=np.float64)
        half = qs[_band_index(p, calibration["band_edges_months"])]
    else:
        half = np.full_like(p, float(calibration["quantile_months"]))
    return np.maximum(p - half, 0.0), p + half


def interval_metrics(
    true_months: Sequence[float],
    lo_months: Sequence[float],
    hi_months: Sequence[float],
    *,
    age_bands: Sequence[float] = (0, 24, 60, 120, 180, 240),
) -> dict[str, float]:
    """``coverage`` (percent of true ages in ``[lo, hi]``) and ``mean_width`` (months), overall
    and per non-empty band of the true age (``coverage_<lo>to<hi>mo``, ``width_<lo>to<hi>mo``)."""
    t, lo, hi = (np.asarray(x, dtype=np.float64) for x in (true_months, lo_months, hi_months))
    if not (len(t) == len(lo) == len(hi)) or len(t) == 0:
        raise ValueError(f"need equal, non-zero lengths: {len(t)}, {len(lo)}, {len(hi)}")
    inside, width = (t >= lo) & (t <= hi), hi - lo
    out = {"coverage": float(100.0 * inside.mean()), "mean_width": float(width.mean())}
    for a, b in zip(age_bands[:-1], age_bands[1:]):
        sel = (t >= a) & (t < b)
        if sel.any():
            out[f"coverage_{a:g}to{b:g}mo"] = float(100.0 * inside[sel].mean())
            out[f"width_{a:g}to{b:g}mo"] = float(width[sel].mean())
    return out


def sidecar_path(weights: str | os.PathLike) -> Path:
    """``model_final.pth`` -> ``model_final.intervals.json`` beside it."""
    w = Path(weights)
    return w.with_name(w.stem + SIDECAR_SUFFIX)


def write_calibration(path: str | os.PathLike, calibration: dict, **provenance) -> Path:
    """Write the sidecar json atomically: the calibration plus provenance keys."""
    atomic_write_json(Path(path), {**calibration, **provenance}, indent=1)
    return Path(path)


def load_calibration(path: str | os.PathLike, coverage: float | None = None) -> dict:
    """Read a sidecar; with ``coverage``, a calibration made at another coverage is an error
    (the stored quantile is for its own coverage only: recalibrate at the one you want)."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            cal = json.load(f)
    except (OSError, ValueError) as e:
        raise IntervalCalibrationError(f"interval calibration {path}: cannot read ({e})") from e
    need = ["method", "coverage", "quantile_months"]
    if cal.get("method") == "band":
        need += ["band_edges_months", "band_quantiles_months"]
    missing = [k for k in need if k not in cal]
    if missing or cal.get("method") not in INTERVAL_METHODS:
        raise IntervalCalibrationError(
            f"interval calibration {path}: missing field(s) {missing} or bad method "
            f"{cal.get('method')!r}; expected one of {INTERVAL_METHODS}"
        )
    if coverage is not None and not math.isclose(float(cal["coverage"]), coverage, abs_tol=1e-9):
        raise IntervalCalibrationError(
            f"interval calibration {path} is for coverage {cal['coverage']}, but "
            f"BONEAGE.INTERVALS.COVERAGE is {coverage}: rerun tools/calibrate_intervals.py "
            f"--coverage {coverage}"
        )
    return cal


def calibration_for_config(cfg) -> dict | None:
    """The calibration a config asks for: ``BONEAGE.INTERVALS.CALIBRATION_FILE`` (an error when
    it cannot be read), else the sidecar beside ``MODEL.WEIGHTS`` when it exists, else None (no
    intervals). Checked against ``BONEAGE.INTERVALS.COVERAGE``."""
    c = cfg.BONEAGE.INTERVALS
    path = c.CALIBRATION_FILE
    if not path:
        if not cfg.MODEL.WEIGHTS:
            return None
        path = sidecar_path(cfg.MODEL.WEIGHTS)
        if not path.is_file():
            return None
    return load_calibration(path, coverage=float(c.COVERAGE))
