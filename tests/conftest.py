"""Session fixtures shared by every test folder (data builders and paths: tests/fixtures.py)."""

from __future__ import annotations

import os

import pytest

from tests.fixtures import write_tiny_dataset

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> str:
    """Registers ``tiny_boneage_train`` (and views) once per session; returns its name."""
    from detectron2.data import DatasetCatalog

    from boneage_d2.data import register_boneage_split

    name = "tiny_boneage_train"
    if name not in DatasetCatalog.list():
        path = write_tiny_dataset(tmp_path_factory.mktemp("tiny"))
        register_boneage_split(name, path)
    return name
