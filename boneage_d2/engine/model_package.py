"""Model packages: one self-describing folder per trained model, written by ``train_net`` beside
``model_final.pth`` and accepted by predict, serve, export and calibrate in place of a config and
weights pair.

    <OUTPUT_DIR>/model_package/
        config.yaml                   the frozen training config (MODEL.WEIGHTS empty)
        model_final.pth               the weights (model state and provenance only)
        model_final.intervals.json    the interval calibration, when there is one
        model_card.json, model_card.md
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..evaluation.intervals import sidecar_path
from ..io.atomic import atomic_open, atomic_write_json
from ..utils.provenance import collect_provenance
from .model_card import build_model_card, render_model_card

__all__ = [
    "PACKAGE_DIR",
    "ModelPackage",
    "ModelPackageError",
    "SyntheticTrainingWarning",
    "is_model_package",
    "update_card_calibration",
    "write_model_package",
]

logger = logging.getLogger(__name__)

PACKAGE_DIR = "model_package"
CONFIG, WEIGHTS, CARD_JSON, CARD_MD = (
    "config.yaml",
    "model_final.pth",
    "model_card.json",
    "model_card.md",
)


class ModelPackageError(ValueError):
    """A folder that is not a usable model package; the message names the file."""


class SyntheticTrainingWarning(UserWarning):
    """A model trained on phantom films only is loaded to read films."""


def is_model_package(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` is a folder holding a model card (a model package)."""
    return bool(path) and (Path(path) / CARD_JSON).is_file()


@dataclass(frozen=True)
class ModelPackage:
    """A model package folder and its card."""

    root: Path
    card: dict

    @classmethod
    def load(cls, path: str | os.PathLike) -> ModelPackage:
        """Read the card; ``ModelPackageError`` when a file is missing or the card is not json."""
        root = Path(path)
        try:
            card = json.loads((root / CARD_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelPackageError(
                f"model package {root}: cannot read {CARD_JSON} ({e})"
            ) from None
        for name in (CONFIG, WEIGHTS):
            if not (root / name).is_file():
                raise ModelPackageError(f"model package {root}: {name} is missing")
        return cls(root, card)

    @property
    def config_file(self) -> str:
        return os.fspath(self.root / CONFIG)

    @property
    def weights(self) -> str:
        return os.fspath(self.root / WEIGHTS)

    @property
    def synthetic(self) -> bool:
        """Trained on phantom films only (the card's ``training_data.synthetic``)."""
        return bool(self.card.get("training_data", {}).get("synthetic"))

    def warn_if_synthetic(self) -> None:
        """A ``SyntheticTrainingWarning`` (and a log line) when the model never saw a real film."""
        if self.synthetic:
            splits = ", ".join(d["name"] for d in self.card["training_data"]["splits"])
            message = (
                f"model package {self.root} was trained on synthetic phantom films only "
                f"({splits}): its ages on real radiographs are meaningless (research and "
                "testing only; not a medical device)"
            )
            logger.warning(message)
            warnings.warn(message, SyntheticTrainingWarning, stacklevel=3)


def _package_config(cfg) -> str:
    """The frozen config as yaml, independent of where the package lies: no weights path (the
    loader points MODEL.WEIGHTS at the package's), the calibration beside them, and no download
    of ImageNet weights that the package's weights replace."""
    clone = cfg.clone()
    clone.defrost()
    clone.MODEL.WEIGHTS = ""
    clone.BONEAGE.INTERVALS.CALIBRATION_FILE = ""
    clone.BONEAGE.EFFICIENTNET.PRETRAINED = False
    return clone.dump()


def _copy_calibration(weights: Path, folder: Path) -> str | None:
    """The calibration beside ``weights`` into the package when it is newer than the weights
    (an older one belongs to earlier weights); its file name, or None."""
    cal = sidecar_path(weights)
    if not cal.is_file():
        return None
    if cal.stat().st_mtime < weights.stat().st_mtime:
        logger.warning("%s is older than %s: not put into the model package", cal, weights)
        return None
    shutil.copy2(cal, sidecar_path(folder / WEIGHTS))
    return sidecar_path(folder / WEIGHTS).name


def write_model_package(
    cfg,
    *,
    config_name: str,
    results: Mapping | None = None,
    provenance: Mapping | None = None,
    output_dir: str | os.PathLike | None = None,
) -> Path:
    """Write ``<OUTPUT_DIR>/model_package`` from ``OUTPUT_DIR/model_final.pth`` and the run's
    ``cfg``, ``results`` (the last evaluation) and ``provenance`` (collected when None). The
    folder is built beside and swapped in whole, so no file of an older package survives."""
    out = Path(output_dir or cfg.OUTPUT_DIR)
    weights = out / WEIGHTS
    if not weights.is_file():
        raise ModelPackageError(f"{weights} not found: nothing to package")
    provenance = dict(provenance or collect_provenance(cfg))
    final, tmp, old = out / PACKAGE_DIR, out / f".{PACKAGE_DIR}.tmp", out / f".{PACKAGE_DIR}.old"
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir(parents=True)
    with atomic_open(tmp / CONFIG, "w", encoding="utf-8") as f:
        f.write(_package_config(cfg))
    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    torch.save({"model": checkpoint["model"], "provenance": provenance}, tmp / WEIGHTS)
    files = {"config": CONFIG, "weights": WEIGHTS, "intervals": _copy_calibration(weights, tmp)}
    card = build_model_card(
        cfg, config_name=config_name, provenance=provenance, results=results, files=files
    )
    _write_card(tmp, card)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    logger.info("model package: %s", final)
    return final


def _write_card(folder: Path, card: dict) -> None:
    atomic_write_json(folder / CARD_JSON, card, indent=1)
    with atomic_open(folder / CARD_MD, "w", encoding="utf-8") as f:
        f.write(render_model_card(card))


def update_card_calibration(package: ModelPackage, calibration: Mapping, dataset: str) -> None:
    """Record an interval calibration written into the package in its card (json and md)."""
    card = dict(package.card)
    card["interval_calibration"] = {
        "dataset": dataset,
        "method": calibration["method"],
        "coverage": float(calibration["coverage"]),
        "quantile_months": float(calibration["quantile_months"]),
        "n": int(calibration["n"]),
    }
    card["files"] = {**card.get("files", {}), "intervals": sidecar_path(package.weights).name}
    _write_card(package.root, card)
