"""Bone-age metrics: MAE (headline) with a bootstrap interval, RMSE, by sex and age band."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["beats_mean_predictor", "boneage_metrics", "band_name", "subgroups"]


def band_name(lo: float, hi: float) -> str:
    """Metric key of an age band, e.g. ``MAE_60to120mo`` (Detectron2's summary hides keys with
    a "-")."""
    return f"MAE_{lo:g}to{hi:g}mo"


def boneage_metrics(
    true_months: Sequence[float],
    pred_months: Sequence[float],
    male: Sequence[bool],
    *,
    age_bands: Sequence[float] = (0, 24, 60, 120, 180, 240),
    train_mean_months: float | None = None,
    bootstrap_samples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """All bone-age metrics for one evaluation set (months; shares in percent).

    Keys: ``MAE``, ``MAE_CI95_lo``/``MAE_CI95_hi`` (percentile bootstrap over images; omitted when
    ``bootstrap_samples`` is 0), ``RMSE``, ``MAE_male``/``MAE_female``, one ``MAE_<lo>to<hi>mo`` per
    non-empty band (``lo <= age < hi``, true age), ``within_6mo``/``within_12mo`` (percent of images
    with absolute error <= 6 / 12 months), ``mean_predictor_MAE`` (the MAE of always predicting
    the training-set mean, when given; with the bootstrap also its ``_CI95_lo``/``_CI95_hi`` over
    the same resamples, and ``mean_predictor_MAE_male`` etc. per subgroup) and ``num_images``.
    """
    t = np.asarray(true_months, dtype=np.float64)
    p = np.asarray(pred_months, dtype=np.float64)
    m = np.asarray(male, dtype=bool)
    if not (len(t) == len(p) == len(m)):
        raise ValueError(f"length mismatch: {len(t)} true, {len(p)} predicted, {len(m)} sex values")
    if len(t) == 0:
        return {"num_images": 0.0}
    err = np.abs(p - t)
    out: dict[str, float] = {"MAE": float(err.mean())}
    idx = None
    if bootstrap_samples > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(err), size=(bootstrap_samples, len(err)))
        out["MAE_CI95_lo"], out["MAE_CI95_hi"] = _ci95(err, idx)
    out["RMSE"] = float(np.sqrt(((p - t) ** 2).mean()))
    groups = subgroups(t, m, age_bands)
    out.update({key: float(err[sel].mean()) for key, sel in groups.items()})
    out["within_6mo"] = float(100.0 * (err <= 6).mean())
    out["within_12mo"] = float(100.0 * (err <= 12).mean())
    if train_mean_months is not None:
        mean_err = np.abs(t - train_mean_months)
        out["mean_predictor_MAE"] = float(mean_err.mean())
        if idx is not None:
            lo, hi = _ci95(mean_err, idx)
            out["mean_predictor_MAE_CI95_lo"], out["mean_predictor_MAE_CI95_hi"] = lo, hi
        out.update(
            {f"mean_predictor_{k}": float(mean_err[sel].mean()) for k, sel in groups.items()}
        )
    out["num_images"] = float(len(t))
    return out


def subgroups(
    t: np.ndarray, male: np.ndarray, age_bands: Sequence[float] = (0, 24, 60, 120, 180, 240)
) -> dict[str, np.ndarray]:
    """Non-empty subgroups as boolean selections over the images, keyed by their metric:
    ``MAE_male``/``MAE_female`` and one ``MAE_<lo>to<hi>mo`` per band (true age)."""
    sels = {"MAE_male": male, "MAE_female": ~male}
    for lo, hi in zip(age_bands[:-1], age_bands[1:]):
        sels[band_name(lo, hi)] = (t >= lo) & (t < hi)
    return {key: sel for key, sel in sels.items() if sel.any()}


def _ci95(err: np.ndarray, idx: np.ndarray) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of ``err.mean()`` over the resamples ``idx``."""
    lo, hi = np.percentile(err[idx].mean(axis=1), [2.5, 97.5])
    return float(lo), float(hi)


def beats_mean_predictor(
    metrics: Mapping[str, float], max_ratio: float = 0.75, prefix: str = "boneage/"
) -> bool | None:
    """Whether a model clearly beats the mean predictor: MAE at most ``max_ratio`` times the mean
    predictor's and the two 95% bootstrap intervals apart (model's upper end below the mean
    predictor's lower end). None when the metrics lack the MAEs or their intervals."""
    keys = ("MAE", "MAE_CI95_hi", "mean_predictor_MAE", "mean_predictor_MAE_CI95_lo")
    if any(prefix + k not in metrics for k in keys):
        return None
    mae, hi, mean, mean_lo = (float(metrics[prefix + k]) for k in keys)
    return mae <= max_ratio * mean and hi < mean_lo
