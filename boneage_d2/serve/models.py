"""The served models: ``NAME=CONFIG_YAML[:WEIGHTS]`` specs, loaded once, each behind a lock."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ModelSpec", "ServedModel", "config_hash", "load_models", "parse_model_spec"]

# Config keys that hold server-side paths: left out of the config hash (and never shown).
_PATH_KEYS = (("MODEL", "WEIGHTS"), ("OUTPUT_DIR",), ("BONEAGE", "INTERVALS", "CALIBRATION_FILE"))


@dataclass(frozen=True)
class ModelSpec:
    """One model to serve: its name in URLs, its config yaml and checkpoint (None: the config's
    ``MODEL.WEIGHTS``), and config overrides (``KEY VALUE`` ...)."""

    name: str
    config_file: str
    weights: str | None = None
    opts: tuple[str, ...] = ()


def parse_model_spec(text: str) -> ModelSpec:
    """``NAME=CONFIG_YAML:WEIGHTS`` (or ``NAME=CONFIG_YAML``, or ``NAME=PACKAGE_DIR`` for a model
    package, whose config brings its weights) -> ``ModelSpec``; ``ValueError`` naming the part
    that is wrong."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest:
        raise ValueError(f"--model {text!r}: expected NAME=CONFIG_YAML:WEIGHTS")
    name = name.strip()
    if not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"--model {text!r}: NAME {name!r} may hold letters, digits, - _ . only")
    config, weights = rest, None
    if ":" in rest and not rest.endswith((".yaml", ".yml")):
        config, weights = rest.rsplit(":", 1)
    return ModelSpec(name, config, weights or None)


def config_hash(cfg) -> str:
    """SHA-256 (hex) of the config as yaml with its path keys blanked: the same model config
    hashes the same wherever its files lie."""
    clone = cfg.clone()
    clone.defrost()
    for keys in _PATH_KEYS:
        node = clone
        for k in keys[:-1]:
            node = node.get(k) if node is not None else None
        if node is not None and keys[-1] in node:
            node[keys[-1]] = ""
    return hashlib.sha256(clone.dump().encode()).hexdigest()


@dataclass
class ServedModel:
    """A loaded ``BoneAgePredictor`` with what ``GET /models`` says about it. ``lock`` serialises
    its inference: one forward pass at a time per model (Detectron2 models are not re-entrant
    under concurrent calls; different models run in parallel). ``config_file`` and ``weights``
    are for the server's own log: ``describe`` never shows them."""

    name: str
    predictor: Any
    config_file: str
    weights: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> dict:
        """Name, meta-architecture, package version, config hash, calibration state, input size
        and pipeline (plain data, no server path)."""
        from ..version import __version__

        cfg = self.predictor.cfg
        info = {
            "name": self.name,
            "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
            "package_version": __version__,
            "config_sha256": config_hash(cfg),
            "device": cfg.MODEL.DEVICE,
            "input_long_side": int(cfg.BONEAGE.INPUT.LONG_SIDE_TEST),
            "pad_to_square": bool(cfg.BONEAGE.INPUT.PAD_TO_SQUARE),
            "intensity": cfg.BONEAGE.INPUT.INTENSITY.NAME,
        }
        cal = self.predictor.interval_calibration
        info["calibrated"] = bool(cal)
        info["interval_coverage"] = float(cal["coverage"]) if cal else None
        if cfg.MODEL.META_ARCHITECTURE == "HandSegBoneAgeRCNN":
            info["hand_crop_size"] = int(cfg.BONEAGE.RAN.INPUT_SIZE)
        return info


def _load(spec: ModelSpec) -> ServedModel:
    import boneage_d2  # noqa: F401  (registers the architectures)
    from boneage_d2.engine import ConfigError, load_inference_config
    from boneage_d2.engine.predictor import BoneAgePredictor

    where = f"--model {spec.name}"
    cfg = load_inference_config(spec.config_file, list(spec.opts), spec.weights)
    if not cfg.MODEL.WEIGHTS:
        raise ConfigError(f"{where}: no weights (NAME=CONFIG_YAML:WEIGHTS, a model_final.pth)")
    if "://" not in cfg.MODEL.WEIGHTS and not Path(cfg.MODEL.WEIGHTS).is_file():
        raise ConfigError(f"{where}: weights file not found: {cfg.MODEL.WEIGHTS}")
    cfg.freeze()
    config_file = os.fspath(spec.config_file)
    return ServedModel(spec.name, BoneAgePredictor(cfg), config_file, cfg.MODEL.WEIGHTS)


def load_models(specs: list[ModelSpec]) -> dict[str, ServedModel]:
    """Every spec loaded once, in order (the first is the default model); ``ConfigError`` for a
    bad config or missing weights, ``ValueError`` for a repeated name."""
    names = [s.name for s in specs]
    if not specs:
        raise ValueError("no model to serve: pass --model NAME=CONFIG_YAML:WEIGHTS")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"--model: name(s) used twice: {', '.join(dupes)}")
    return {s.name: _load(s) for s in specs}
