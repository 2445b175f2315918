"""Robustness stress test: a model re-evaluated on the same films under controlled changes.

Each perturbation (``STRESS_PERTURBATIONS``, built from ``boneage_d2.checks.perturb``) is
applied to every labelled film after it is read; the predictor then runs as it would on a
user's file (input checks included). Per perturbation: MAE with its bootstrap 95 % interval, the
MAE change against the clean films, the mean signed shift of the predicted age, and the share
of films flagged (any flag; a flag is the right answer to an inverted film).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from ..checks import perturb as P
from ..evaluation.metrics import boneage_metrics
from ..io.radiograph import read_radiograph

__all__ = ["STRESS_PERTURBATIONS", "stress_markdown", "stress_test"]

STRESS_PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clean": lambda g: g,
    "rotate +15": lambda g: P.rotate(g, 15),
    "rotate -15": lambda g: P.rotate(g, -15),
    "rotate +30": lambda g: P.rotate(g, 30),
    "rotate -30": lambda g: P.rotate(g, -30),
    "hflip": P.hflip,
    "gamma 0.6": lambda g: P.gamma(g, 0.6),
    "gamma 1.6": lambda g: P.gamma(g, 1.6),
    "noise sd 8": lambda g: P.gaussian_noise(g, 8.0),
    "noise sd 20": lambda g: P.gaussian_noise(g, 20.0),
    "jpeg q30": lambda g: P.jpeg(g, 30),
    "jpeg q10": lambda g: P.jpeg(g, 10),
    "half resolution": P.halve_resolution,
    "inverted": P.invert,
    "L/R tag pasted": P.paste_lr_tag,
}


def stress_test(
    predictor,
    records: Sequence[dict],
    perturbations: dict[str, Callable] | None = None,
    batch_size: int = 8,
    bootstrap_samples: int = 1000,
) -> list[dict]:
    """One row per perturbation over ``records`` (dataset dicts with ``file_name``, ``male``,
    ``boneage``): ``perturbation``, ``n``, ``mae``, ``mae_ci95``, ``delta_mae`` (vs clean),
    ``mean_shift`` (predicted minus clean prediction, months) and ``flag_rate`` (percent)."""
    perturbations = perturbations or STRESS_PERTURBATIONS
    labelled = [r for r in records if r.get("boneage") is not None]
    if not labelled:
        raise ValueError("the stress test needs films with a bone-age label")
    films = [read_radiograph(r["file_name"], predictor.intensity) for r in labelled]
    truth = np.array([float(r["boneage"]) for r in labelled])
    males = [bool(r["male"]) for r in labelled]
    samples = bootstrap_samples if len(labelled) >= 2 else 0  # no interval from one film
    preds: dict[str, np.ndarray] = {}
    flagged: dict[str, np.ndarray] = {}
    for name, fn in tqdm(perturbations.items(), desc="stress test", unit="perturbation"):
        ages, flags = [], []
        for start in range(0, len(films), batch_size):
            chunk = range(start, min(start + batch_size, len(films)))
            inputs = [predictor.model_input(fn(films[i]), labelled[i]["male"]) for i in chunk]
            for out in predictor.predict_batch(inputs):
                ages.append(float(out["boneage"]))
                flags.append(bool(out.get("flags")))
        preds[name], flagged[name] = np.array(ages), np.array(flags)
    clean = preds.get("clean", next(iter(preds.values())))
    clean_mae = float(np.abs(clean - truth).mean())
    rows = []
    for name, p in preds.items():
        m = boneage_metrics(truth, p, males, age_bands=(), bootstrap_samples=samples)
        rows.append(
            {
                "perturbation": name,
                "n": len(p),
                "mae": m["MAE"],
                "mae_ci95": (
                    m.get("MAE_CI95_lo", float("nan")),
                    m.get("MAE_CI95_hi", float("nan")),
                ),
                "delta_mae": m["MAE"] - clean_mae,
                "mean_shift": float((p - clean).mean()),
                "flag_rate": float(100.0 * flagged[name].mean()),
            }
        )
    return rows


def stress_markdown(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| perturbation | n | MAE (months) [95 % CI] | change vs clean | mean shift | flagged |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lo, hi = r["mae_ci95"]
        lines.append(
            f"| {r['perturbation']} | {r['n']} | {r['mae']:.1f} [{lo:.1f}, {hi:.1f}] "
            f"| {r['delta_mae']:+.1f} | {r['mean_shift']:+.1f} | {r['flag_rate']:.0f} % |"
        )
    return "\n".join(lines) + "\n"
