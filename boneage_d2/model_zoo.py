"""The configs shipped with the package, by name: ``get_config("ALA-Net/paper.yaml")``.

Names are paths relative to the repository's ``configs/`` folder, which is the one source: a
wheel carries it as ``boneage_d2/configs/`` (setup.py maps it there), a checkout or an editable
install reads ``configs/`` beside the package. ``_BASE_`` references are relative to each file,
so they resolve inside whichever of the two holds it. ``.yaml`` names give a Detectron2
``CfgNode`` with the bone-age keys; ``.py`` names a LazyConfig (``docs/lazyconfig.md``).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from detectron2.config import CfgNode, LazyConfig, get_cfg

from .config import add_boneage_config

__all__ = [
    "UnknownConfigError",
    "closest_configs",
    "configs_root",
    "get_config",
    "get_config_file",
    "list_configs",
    "resolve_config_file",
]

_PACKAGED = Path(__file__).resolve().parent / "configs"  # inside an installed wheel
_CHECKOUT = Path(__file__).resolve().parents[1] / "configs"  # a checkout, an editable install
_SUFFIXES = (".yaml", ".py")


class UnknownConfigError(FileNotFoundError):
    """A config name that is neither a file nor one of the package's configs."""


def configs_root() -> Path:
    """The folder the package's configs are read from (the wheel's copy, else the checkout's)."""
    for root in (_PACKAGED, _CHECKOUT):
        if (root / "Base-BoneAge.yaml").is_file():
            return root
    raise UnknownConfigError(
        f"no packaged configs: neither {_PACKAGED} nor {_CHECKOUT} holds Base-BoneAge.yaml "
        "(reinstall boneage_d2)"
    )


def list_configs() -> list[str]:
    """Every config name (``Global/R18-phantom-demo.yaml``, ...), sorted; lazy-config helper
    modules under ``common/`` are left out."""
    root = configs_root()
    names = (
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix in _SUFFIXES and p.is_file() and "__pycache__" not in p.parts
    )
    return sorted(n for n in names if not n.startswith("common/"))


def get_config_file(name: str) -> str:
    """The path of the package's config ``name`` (e.g. ``"ALA-Net/paper.yaml"``; a leading
    ``configs/`` is accepted). Raises ``UnknownConfigError`` with the closest names."""
    root = configs_root()
    rel = name.replace("\\", "/").removeprefix("./").removeprefix("configs/")
    path = (root / rel).resolve()
    if path.suffix in _SUFFIXES and path.is_file() and path.is_relative_to(root):
        return os.fspath(path)
    close = closest_configs(name)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UnknownConfigError(
        f"config {name!r} is neither a file nor a config of the package{hint} "
        "(boneage_d2.model_zoo.list_configs() lists them)"
    )


def closest_configs(name: str, n: int = 3) -> list[str]:
    """The package's config names closest to ``name`` (none for an absolute path)."""
    if os.path.isabs(name):
        return []
    rel = name.replace("\\", "/").removeprefix("./").removeprefix("configs/")
    return difflib.get_close_matches(rel, list_configs(), n=n, cutoff=0.5)


def resolve_config_file(name_or_path: str | os.PathLike) -> str:
    """An existing file as it is, else the package's config of that name."""
    if os.path.isfile(name_or_path):
        return os.fspath(name_or_path)
    return get_config_file(os.fspath(name_or_path))


def get_config(name: str):
    """The package's config ``name``: a ``CfgNode`` with ``add_boneage_config`` applied and the
    yaml merged (``.yaml``), or the ``LazyConfig`` of a ``.py`` config."""
    path = get_config_file(name)
    if path.endswith(".py"):
        return LazyConfig.load(path)
    cfg: CfgNode = add_boneage_config(get_cfg())
    cfg.merge_from_file(path)
    return cfg
