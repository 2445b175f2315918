"""The model card of a model package: what was trained on what, how well it did beside the mean
predictor, and what it must not be used for (json for programs, markdown for people)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import PurePath

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..evaluation.metrics import beats_mean_predictor

__all__ = [
    "INTENDED_USE",
    "LIMITS",
    "SYNTHETIC_LIMIT",
    "build_model_card",
    "card_metrics",
    "is_synthetic_dataset",
    "render_model_card",
]

INTENDED_USE = (
    "Research and education: bone-age estimates from left-hand radiographs of children, for "
    "studying the methods. Not for diagnosis, treatment or any decision about a patient."
)
LIMITS = [
    "Research only, not a medical device: no clinical validation, no regulatory clearance.",
    "Ages are only as good as the training data; read every MAE beside the mean predictor's.",
    "Films unlike the training films (other scanners, exposures, ages, populations) can give "
    "wrong ages without any flag; the input checks catch only gross problems.",
]
SYNTHETIC_LIMIT = (
    "Trained on synthetic phantom films only: its ages on real radiographs are meaningless. "
    "Phantom-trained models test the pipeline, they do not read real films."
)
_METRICS = ("MAE", "RMSE", "within_6mo", "within_12mo", "num_images", "mean_predictor_MAE")


def is_synthetic_dataset(name: str) -> bool:
    """A phantom split: its name starts with ``phantom`` or its converted json lies under a
    folder named ``phantom`` (the layout ``tools/make_phantom.py`` + ``convert_rsna.py`` write)."""
    if name.startswith("phantom"):
        return True
    json_file = MetadataCatalog.get(name).get("boneage_json")
    return bool(json_file) and any("phantom" in part for part in PurePath(json_file).parts)


def _split_metrics(metrics: Mapping[str, float]) -> dict:
    """Bone-age metrics of one split with their 95% intervals side by side."""
    out = {k: float(metrics[k]) for k in _METRICS if k in metrics}
    for key in ("MAE", "mean_predictor_MAE"):
        if f"{key}_CI95_lo" in metrics:
            out[f"{key}_CI95"] = [
                float(metrics[f"{key}_CI95_lo"]),
                float(metrics[f"{key}_CI95_hi"]),
            ]
    beats = beats_mean_predictor(metrics, prefix="")
    if beats is not None:
        out["beats_mean_predictor"] = beats
    return out


def card_metrics(cfg, results: Mapping | None) -> dict:
    """``{split: metrics}`` from the trainer's last evaluation (Detectron2 unnests the results of
    a single test split; a detection AP is kept beside the bone-age metrics)."""
    if not results:
        return {}
    if "boneage" in results:
        results = {cfg.DATASETS.TEST[0]: results}
    out = {}
    for split, res in results.items():
        row = _split_metrics(res.get("boneage", {}))
        for task in ("bbox", "segm"):
            if "AP" in res.get(task, {}):
                row[f"{task}_AP"] = float(res[task]["AP"])
        out[split] = row
    return out


def build_model_card(
    cfg, *, config_name: str, provenance: Mapping, results: Mapping | None, files: Mapping
) -> dict:
    """The card's json: model, config name, package version and git revision, training data
    (splits, image counts, sha1 fingerprints, whether synthetic), metrics, intended use, limits
    and the package's ``files``."""
    hashes = provenance.get("datasets_sha1", {})
    train = [
        {"name": n, "images": len(DatasetCatalog.get(n)), "sha1": hashes.get(n)}
        for n in cfg.DATASETS.TRAIN
    ]
    synthetic = bool(train) and all(is_synthetic_dataset(d["name"]) for d in train)
    return {
        "format": "boneage_d2 model package, version 1",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config_name": config_name,
        "package_version": provenance.get("boneage_d2_version"),
        "git_revision": provenance.get("git_revision"),
        "config_sha1": provenance.get("config_sha1"),
        "model": {
            "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "age_head": cfg.BONEAGE.HEAD.NAME,
            "input_long_side": int(cfg.BONEAGE.INPUT.LONG_SIDE_TEST),
            "intensity": cfg.BONEAGE.INPUT.INTENSITY.NAME,
            "iterations": int(cfg.SOLVER.MAX_ITER),
        },
        "training_data": {
            "splits": train,
            "evaluation_splits": [{"name": n, "sha1": hashes.get(n)} for n in cfg.DATASETS.TEST],
            "synthetic": synthetic,
        },
        "metrics": card_metrics(cfg, results),
        "interval_calibration": None,
        "intended_use": INTENDED_USE,
        "limits": ([SYNTHETIC_LIMIT] if synthetic else []) + LIMITS,
        "files": dict(files),
    }


def _ci(values) -> str:
    return f"{values[0]:.1f}-{values[1]:.1f}" if values else ""


def render_model_card(card: Mapping) -> str:
    """The card as markdown (``model_card.md``)."""
    m, data = card["model"], card["training_data"]
    lines = [
        f"# Model card: {card['config_name']}",
        "",
        f"- Model: {m['meta_architecture']} ({m['backbone']}, {m['age_head']}), "
        f"{m['input_long_side']} px long side, intensity `{m['intensity']}`, "
        f"{m['iterations']} iterations",
        f"- boneage_d2 {card['package_version']}, git {card['git_revision'] or 'unknown'}, "
        f"config sha1 {card['config_sha1']}",
        f"- Created {card['created']}",
        "",
        "## Intended use",
        "",
        card["intended_use"],
        "",
        "## Limits",
        "",
        *[f"- {limit}" for limit in card["limits"]],
        "",
        "## Training data",
        "",
        "| split | images | sha1 |",
        "|---|---|---|",
        *[f"| {d['name']} | {d['images']} | `{d['sha1']}` |" for d in data["splits"]],
        "",
        f"Synthetic (phantom) only: {'yes' if data['synthetic'] else 'no'}.",
        "",
        "## Metrics (months; 95% bootstrap intervals)",
        "",
    ]
    if card["metrics"]:
        lines += [
            "| split | images | MAE | 95% CI | mean predictor MAE | 95% CI | beats the mean |",
            "|---|---|---|---|---|---|---|",
        ]
        for split, r in card["metrics"].items():
            beats = {True: "yes", False: "no"}.get(r.get("beats_mean_predictor"), "")
            lines.append(
                f"| {split} | {r.get('num_images', 0):.0f} | {r.get('MAE', float('nan')):.1f} | "
                f"{_ci(r.get('MAE_CI95'))} | {r.get('mean_predictor_MAE', float('nan')):.1f} | "
                f"{_ci(r.get('mean_predictor_MAE_CI95'))} | {beats} |"
            )
    else:
        lines.append("No evaluation ran (empty DATASETS.TEST).")
    cal = card.get("interval_calibration")
    lines += ["", "## Prediction intervals", ""]
    if cal:
        lines.append(
            f"{100 * cal['coverage']:g} % split-conformal intervals ({cal['method']}), calibrated "
            f"on {cal['dataset']} ({cal['n']} films): prediction +- "
            f"{cal['quantile_months']:.1f} months."
        )
    else:
        lines.append("Not calibrated (`boneage-calibrate --config-file <this folder> ...`).")
    lines += ["", "## Files", "", *[f"- {k}: `{v}`" for k, v in card["files"].items() if v], ""]
    return "\n".join(lines)
