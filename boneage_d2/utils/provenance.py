"""Provenance: what produced a checkpoint or a result (package, git, config, data)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

__all__ = ["git_revision", "dataset_fingerprint", "collect_provenance", "Provenance"]

_REPO = Path(__file__).resolve().parents[2]


def git_revision(path: str | os.PathLike = _REPO) -> str | None:
    """``<hash>`` (``+dirty`` when the tree has changes) of the checkout holding the package;
    None for an installed wheel (whatever repository its site-packages may lie in)."""
    if not (Path(path) / "setup.py").is_file():
        return None
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def dataset_fingerprint(records: list[dict]) -> str:
    """sha1 over the sorted (image_id, file name, label, sex) of a dataset: which data, exactly."""
    h = hashlib.sha1()
    for r in sorted(records, key=lambda r: str(r["image_id"])):
        h.update(
            f"{r['image_id']}|{os.path.basename(r['file_name'])}|{r.get('boneage')}|"
            f"{r.get('male')}\n".encode()
        )
    return h.hexdigest()


def collect_provenance(cfg) -> dict:
    """Package version, git revision, config hash and the fingerprint of every dataset in it."""
    from detectron2.data import DatasetCatalog

    from ..version import __version__

    datasets = {}
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        try:
            datasets[name] = dataset_fingerprint(DatasetCatalog.get(name))
        except (FileNotFoundError, KeyError) as e:
            datasets[name] = f"unavailable: {e}"
    return {
        "boneage_d2_version": __version__,
        "git_revision": git_revision(),
        "config_sha1": hashlib.sha1(cfg.dump().encode()).hexdigest(),
        "datasets_sha1": datasets,
    }


class Provenance:
    """A checkpointable record: ``DetectionCheckpointer`` saves it inside every checkpoint."""

    def __init__(self, info: dict):
        self.info = dict(info)

    def state_dict(self) -> dict:
        return dict(self.info)

    def load_state_dict(self, state: dict) -> None:
        self.loaded = dict(state)  # the run that wrote the checkpoint; the current one is kept

    def write(self, path: str | os.PathLike) -> None:
        from ..io.atomic import atomic_write_json

        atomic_write_json(path, self.info, indent=1)

    def __repr__(self) -> str:
        return f"Provenance({json.dumps(self.info)})"
