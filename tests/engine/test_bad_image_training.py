"""Unreadable images met while training: skipped, warned about and counted (also through
DataLoader workers), or a clear error naming the file with BONEAGE.DATA.ON_BAD_IMAGE "fail"."""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path

import pytest
from detectron2.data import DatasetCatalog, MapDataset
from detectron2.engine.hooks import PeriodicCheckpointer

from boneage_d2.data import BoneAgeDatasetMapper, register_boneage_split
from boneage_d2.data.bad_images import (
    SKIPPED_IMAGES_KEY,
    SKIPPED_IMAGES_METRIC,
    with_skipped_image_metric,
)
from boneage_d2.data.catalog import load_boneage_json
from boneage_d2.data.transforms import LongSideResize
from boneage_d2.engine import BoneAgeTrainer, load_config
from boneage_d2.io.radiograph import ImageReadError
from tests.fixtures import CONFIGS, write_tiny_dataset

CONFIG = str(CONFIGS / "Global/R18-phantom-demo.yaml")
TRUNCATED, MISSING = "1001.png", "1003.png"
NUM_IMAGES = 6
ITERS = 3


def _dataset_with_bad_images(root: Path) -> Path:
    """The tiny dataset with one truncated PNG and one missing file."""
    path = write_tiny_dataset(root, num_images=NUM_IMAGES)
    png = root / "images" / TRUNCATED
    png.write_bytes(png.read_bytes()[:-30])
    (root / "images" / MISSING).unlink()
    return path


@pytest.fixture(scope="module")
def bad_dataset(tmp_path_factory) -> str:
    name = "bad_images_boneage_train"
    if name not in DatasetCatalog.list():
        register_boneage_split(name, _dataset_with_bad_images(tmp_path_factory.mktemp("bad")))
    return name


class _Trainer(BoneAgeTrainer):
    """``BoneAgeTrainer`` (whose train loader reports skipped images) without checkpoints (a few
    hundred MB of writes that these tests do not need)."""

    def build_hooks(self):
        return [h for h in super().build_hooks() if not isinstance(h, PeriodicCheckpointer)]


def _cfg(dataset: str, out: Path, workers: int, on_bad_image: str = "skip"):
    opts = {
        "DATASETS.TRAIN": f"('{dataset}',)",
        "DATASETS.TEST": "()",
        "BONEAGE.INPUT.LONG_SIDE_TRAIN": "96",
        "BONEAGE.INPUT.LONG_SIDE_TEST": "96",
        "BONEAGE.INPUT.RANDOM_SCALE": "(1.0, 1.0)",
        "BONEAGE.HEAD.NAME": "RegressionAgeHead",
        "BONEAGE.DATA.ON_BAD_IMAGE": on_bad_image,
        "SOLVER.IMS_PER_BATCH": "4",
        "SOLVER.MAX_ITER": str(ITERS),
        "SOLVER.STEPS": "()",
        "SOLVER.WARMUP_ITERS": "0",
        "SOLVER.CHECKPOINT_PERIOD": "1000",
        "TEST.EVAL_PERIOD": "0",
        "DATALOADER.NUM_WORKERS": str(workers),
        "OUTPUT_DIR": str(out),
    }
    cfg = load_config(CONFIG, [x for kv in opts.items() for x in kv])
    cfg.freeze()
    return cfg


def _last_metrics(out: Path) -> dict:
    lines = (out / "metrics.json").read_text().splitlines()
    return json.loads(lines[-1])


# --- the mapper alone --------------------------------------------------------------------------


def test_mapper_skips_warns_and_counts_then_carries_the_count(tmp_path, caplog):
    records = load_boneage_json(_dataset_with_bad_images(tmp_path))
    mapper = BoneAgeDatasetMapper(is_train=True, augmentations=[LongSideResize(48)])
    with caplog.at_level(logging.WARNING, logger="boneage_d2.data.bad_images"):
        outputs = [mapper(r) for r in records]
    assert [o is None for o in outputs] == [False, True, False, True, False, False]
    assert outputs[2][SKIPPED_IMAGES_KEY] == 1 and outputs[4][SKIPPED_IMAGES_KEY] == 1
    assert SKIPPED_IMAGES_KEY not in outputs[0] and SKIPPED_IMAGES_KEY not in outputs[5]
    text = caplog.text
    assert f"{TRUNCATED}: truncated PNG" in text and f"{MISSING}: image file not found" in text
    # A file is warned about once per process; later skips are still counted.
    caplog.clear()
    assert mapper(records[1]) is None and mapper(records[1]) is None
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]  # DEBUG may show
    assert not warned and mapper(records[0])[SKIPPED_IMAGES_KEY] == 2


def test_map_dataset_retries_and_the_metric_sums_the_batches(tmp_path):
    records = load_boneage_json(_dataset_with_bad_images(tmp_path))
    mapper = BoneAgeDatasetMapper(is_train=True, augmentations=[LongSideResize(48)])
    dataset = MapDataset(records, mapper)
    batches = [[dataset[i] for i in range(0, 3)], [dataset[i] for i in range(3, 6)]]
    assert all(d is not None for b in batches for d in b)
    loader = with_skipped_image_metric(batches)
    assert with_skipped_image_metric(loader) is loader
    assert list(loader) == batches and loader.total >= 2  # works without an event storage
    assert not any(SKIPPED_IMAGES_KEY in d for b in batches for d in b)


def test_mapper_fail_mode_and_test_mode_raise_naming_the_file(tmp_path):
    records = load_boneage_json(_dataset_with_bad_images(tmp_path))
    fail = BoneAgeDatasetMapper(
        is_train=True, augmentations=[LongSideResize(48)], on_bad_image="fail"
    )
    with pytest.raises(ImageReadError, match=rf"{TRUNCATED}: truncated PNG.*ON_BAD_IMAGE='fail'"):
        fail(records[1])
    test_mode = BoneAgeDatasetMapper(is_train=False, augmentations=[LongSideResize(48)])
    with pytest.raises(ImageReadError, match=rf"{MISSING}: image file not found"):
        test_mode(records[3])
    with pytest.raises(ValueError, match=r"ON_BAD_IMAGE='ignore'; expected one of"):
        BoneAgeDatasetMapper(is_train=True, augmentations=[], on_bad_image="ignore")


def test_too_many_bad_images_in_a_row_stop_training(tmp_path, monkeypatch):
    import boneage_d2.data.bad_images as bad_images

    monkeypatch.setattr(bad_images, "MAX_CONSECUTIVE_BAD_IMAGES", 3)
    records = load_boneage_json(_dataset_with_bad_images(tmp_path))
    mapper = BoneAgeDatasetMapper(is_train=True, augmentations=[LongSideResize(48)])
    assert mapper(records[1]) is None and mapper(records[3]) is None
    with pytest.raises(ImageReadError, match="3 training images in a row.*image folder"):
        mapper(records[1])


# --- training ----------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 1])
def test_training_skips_bad_images_and_reports_the_count(bad_dataset, tmp_path, workers):
    out = tmp_path / "run"
    trainer = _Trainer(_cfg(bad_dataset, out, workers))
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == ITERS
    # 12 samples from 6 images: each bad one is met at least once.
    assert trainer.storage.history(SKIPPED_IMAGES_METRIC).latest() >= 2
    assert _last_metrics(out)[SKIPPED_IMAGES_METRIC] >= 2
    del trainer
    gc.collect()  # stop the loader's worker here, not in a later test


@pytest.mark.parametrize("workers", [0, 1])
def test_training_fail_mode_raises_naming_the_file(bad_dataset, tmp_path, workers):
    trainer = _Trainer(_cfg(bad_dataset, tmp_path / "run", workers, on_bad_image="fail"))
    trainer.resume_or_load(resume=False)
    with pytest.raises(ImageReadError, match=rf"({TRUNCATED}|{MISSING}).*ON_BAD_IMAGE='fail'"):
        trainer.train()
    # Shut the failed loader down in this test: PyTorch waits up to 5 s for a worker whose
    # iterator raised, which would otherwise land on whichever test triggers the next gc.
    del trainer
    gc.collect()
