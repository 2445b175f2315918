"""Plots and a markdown report from bone-age predictions CSVs (``BoneAgeEvaluator`` output)."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..evaluation.metrics import band_name, beats_mean_predictor  # noqa: E402

__all__ = [
    "read_predictions",
    "plot_pred_vs_true",
    "plot_mae_by_band_and_sex",
    "plot_stress",
    "results_table",
    "subgroup_table",
]


def read_predictions(csv_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Labelled rows of a ``boneage_predictions.csv`` as arrays ``true``, ``pred``, ``male`` and
    ``image_id`` (strings)."""
    true, pred, male, ids = [], [], [], []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["boneage_true"] == "":
                continue
            true.append(float(row["boneage_true"]))
            pred.append(float(row["boneage_pred"]))
            male.append(row["male"] == "True")
            ids.append(row.get("image_id", str(len(ids))))
    return {
        "true": np.array(true),
        "pred": np.array(pred),
        "male": np.array(male, dtype=bool),
        "image_id": np.array(ids),
    }


def ensemble_predictions(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The mean prediction of several models' ``read_predictions`` on the same images (matched
    by ``image_id``; every member must hold the same images)."""
    first = members[0]
    order = np.argsort(first["image_id"])
    preds = []
    for i, m in enumerate(members):
        if sorted(m["image_id"]) != sorted(first["image_id"]):
            raise ValueError(f"ensemble member {i} was evaluated on other images than member 0")
        preds.append(m["pred"][np.argsort(m["image_id"])])
    return {
        "true": first["true"][order],
        "pred": np.mean(preds, axis=0),
        "male": first["male"][order],
        "image_id": first["image_id"][order],
    }


def plot_pred_vs_true(
    predictions: Mapping[str, dict[str, np.ndarray]], out_path: str | os.PathLike
) -> Path:
    """One scatter panel per model: predicted vs true age (months), identity line, MAE in title."""
    n = len(predictions)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], predictions.items()):
        mae = float(np.abs(p["pred"] - p["true"]).mean()) if len(p["true"]) else float("nan")
        ax.scatter(p["true"][p["male"]], p["pred"][p["male"]], s=9, alpha=0.6, label="male")
        ax.scatter(p["true"][~p["male"]], p["pred"][~p["male"]], s=9, alpha=0.6, label="female")
        ax.plot([0, 240], [0, 240], "k--", lw=1)
        ax.set(
            xlim=(0, 240),
            ylim=(0, 240),
            xlabel="true bone age (months)",
            ylabel="predicted (months)",
            title=f"{name}\nMAE {mae:.1f} months",
        )
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return Path(out_path)


def plot_mae_by_band_and_sex(
    predictions: Mapping[str, dict[str, np.ndarray]],
    out_path: str | os.PathLike,
    age_bands: tuple[float, ...] = (0, 24, 60, 120, 180, 240),
) -> Path:
    """Grouped bars: MAE per age band (true age) for each model, boys and girls side by side."""
    bands = list(zip(age_bands[:-1], age_bands[1:]))
    names = list(predictions)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    width = 0.8 / max(len(names), 1)
    for ax, (sex_name, want_male) in zip(axes, (("boys", True), ("girls", False))):
        for j, name in enumerate(names):
            p = predictions[name]
            err = np.abs(p["pred"] - p["true"])
            values = []
            for lo, hi in bands:
                sel = (p["true"] >= lo) & (p["true"] < hi) & (p["male"] == want_male)
                values.append(err[sel].mean() if sel.any() else np.nan)
            ax.bar(np.arange(len(bands)) + j * width, values, width, label=name)
        ax.set_xticks(np.arange(len(bands)) + 0.4 - width / 2)
        ax.set_xticklabels([band_name(lo, hi).removeprefix("MAE_") for lo, hi in bands])
        ax.set(title=f"MAE by age band, {sex_name}", ylabel="MAE (months)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return Path(out_path)


def _fmt(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def results_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table from flattened evaluation results (``boneage/MAE``, ``bbox/AP``, ...); the
    last column says whether a model clearly beats the mean predictor (``beats_mean_predictor``:
    MAE <= 0.75x and the 95% intervals apart)."""
    head = (
        "| model | MAE (months) | 95% CI | RMSE | within 12 mo (%) | ROI AP | hand AP (segm) "
        "| beats the mean |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for name, m in rows.items():
        ci = ""
        if "boneage/MAE_CI95_lo" in m:
            ci = f"{m['boneage/MAE_CI95_lo']:.2f}-{m['boneage/MAE_CI95_hi']:.2f}"
        roi_ap = m.get("roi/AP") if "roi/AP" in m else None
        verdict = {True: "yes", False: "no", None: ""}[beats_mean_predictor(m)]
        lines.append(
            f"| {name} | {_fmt(m.get('boneage/MAE'))} | {ci} | {_fmt(m.get('boneage/RMSE'))} "
            f"| {_fmt(m.get('boneage/within_12mo'), 1)} | {_fmt(roi_ap, 1)} "
            f"| {_fmt(m.get('segm/AP'), 1)} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def subgroup_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of MAE (months) with its 95% CI, by sex and age band, one row per model of
    ``rows`` (``boneage_metrics`` output, unprefixed keys) and first the mean predictor's row
    (its ``mean_predictor_*`` keys, from the first model)."""
    first = next(iter(rows.values()))
    groups = [k for k in first if k.startswith("MAE_") and "CI95" not in k]
    head = "| model | n | MAE [95% CI] | " + " | ".join(g.removeprefix("MAE_") for g in groups)
    lines = [head + " |", "|---" * (3 + len(groups)) + "|"]

    def row(name: str, m: Mapping[str, float], prefix: str) -> str:
        mae = m.get(prefix + "MAE")
        ci = ""
        if prefix + "MAE_CI95_lo" in m:
            ci = f" [{m[prefix + 'MAE_CI95_lo']:.1f}, {m[prefix + 'MAE_CI95_hi']:.1f}]"
        cells = [_fmt(m.get(prefix + g), 1) for g in groups]
        n = int(m.get("num_images", 0))
        return f"| {name} | {n} | {_fmt(mae, 1)}{ci} | " + " | ".join(cells) + " |"

    lines.append(row("mean predictor (training mean)", first, "mean_predictor_"))
    lines += [row(name, m, "") for name, m in rows.items()]
    return "\n".join(lines) + "\n"


def plot_stress(rows: Sequence[Mapping], path: str | os.PathLike, title: str = "") -> None:
    """Bar chart of the stress test: MAE with its 95 % interval per perturbation (the clean
    MAE as a line), and the share of films flagged beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["perturbation"] for r in rows]
    mae = np.array([r["mae"] for r in rows])
    lo = np.array([r["mae_ci95"][0] for r in rows])
    hi = np.array([r["mae_ci95"][1] for r in rows])
    flag = np.array([r["flag_rate"] for r in rows])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 0.35 * len(rows) + 1.5), sharey=True)
    y = np.arange(len(rows))
    err = np.vstack([np.nan_to_num(mae - lo), np.nan_to_num(hi - mae)])
    ax.barh(y, mae, xerr=err, color="#4c72b0", capsize=2)
    clean = next((r["mae"] for r in rows if r["perturbation"] == "clean"), None)
    if clean is not None:
        ax.axvline(clean, color="k", lw=0.8, ls="--", label="clean")
        ax.legend(loc="lower right")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("MAE (months), 95 % CI")
    ax2.barh(y, flag, color="#dd8452")
    ax2.set_xlim(0, 100)
    ax2.set_xlabel("films flagged (%)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
