"""BONEAGE.DATA.ROI_REPEAT_FACTOR: films with ROI boxes come R times as often in the training
sampler's index stream, and the trainer's loader uses that sampler."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
from detectron2.data import DatasetCatalog
from detectron2.data.samplers import RepeatFactorTrainingSampler

from boneage_d2.data import register_boneage_split
from boneage_d2.data.roi_sampling import roi_repeat_factors, roi_repeat_loader_args
from boneage_d2.engine import load_config
from boneage_d2.engine import trainer as trainer_module
from tests.fixtures import CONFIGS, write_tiny_dataset

ANNOTATED = 3  # of NUM_FILMS films keep their ROI boxes
NUM_FILMS = 12


@pytest.fixture(scope="module")
def few_annotated(tmp_path_factory) -> str:
    """A registered split of 12 films, the first 3 with ROI boxes, the others ages only."""
    name = "few_annotated_train"
    if name not in DatasetCatalog.list():
        path = write_tiny_dataset(tmp_path_factory.mktemp("few"), num_images=NUM_FILMS)
        data = json.loads(path.read_text())
        keep = {im["id"] for im in data["images"][:ANNOTATED]}
        data["annotations"] = [
            a for a in data["annotations"] if a["category_id"] == 1 or a["image_id"] in keep
        ]
        path.write_text(json.dumps(data))
        register_boneage_split(name, path)
    return name


def _cfg(dataset: str, factor: float, seed: int = 3):
    opts = ["DATASETS.TRAIN", f"('{dataset}',)", "BONEAGE.DATA.ROI_REPEAT_FACTOR", str(factor)]
    return load_config(
        str(CONFIGS / "ALA-Net" / "R18-phantom-demo.yaml"), opts + ["SEED", str(seed)]
    )


def _draws(sampler: RepeatFactorTrainingSampler, n: int) -> Counter:
    return Counter(itertools.islice(iter(sampler), n))


def test_repeat_factors_follow_the_roi_boxes(few_annotated):
    dicts = DatasetCatalog.get(few_annotated)
    factors = roi_repeat_factors(dicts, 4.0)
    assert factors.tolist() == [4.0] * ANNOTATED + [1.0] * (NUM_FILMS - ANNOTATED)


@pytest.mark.parametrize("factor", [3.0, 2.5])
def test_annotated_films_come_r_times_as_often_per_epoch(few_annotated, factor):
    args = roi_repeat_loader_args(_cfg(few_annotated, factor))
    sampler, dataset = args["sampler"], args["dataset"]
    assert isinstance(sampler, RepeatFactorTrainingSampler) and len(dataset) == NUM_FILMS
    epoch = ANNOTATED * factor + NUM_FILMS - ANNOTATED  # indices per epoch (expected)
    epochs = 1 if factor.is_integer() else 400  # stochastic rounding needs many epochs
    counts = _draws(sampler, int(epoch * epochs))
    annotated = [counts[i] for i in range(ANNOTATED)]
    others = [counts[i] for i in range(ANNOTATED, NUM_FILMS)]
    if factor.is_integer():  # exact in every epoch
        assert annotated == [factor * epochs] * ANNOTATED and others == [epochs] * len(others)
    else:
        ratio = (sum(annotated) / ANNOTATED) / (sum(others) / len(others))
        assert ratio == pytest.approx(factor, rel=0.05)


def test_factor_one_keeps_detectron2s_sampler_and_below_one_is_an_error(few_annotated):
    assert roi_repeat_loader_args(_cfg(few_annotated, 1.0)) == {}
    with pytest.raises(ValueError, match="ROI_REPEAT_FACTOR=0.5; must be >= 1"):
        roi_repeat_loader_args(_cfg(few_annotated, 0.5))


def test_the_trainer_loader_uses_the_repeat_sampler(few_annotated, monkeypatch):
    seen = {}

    def fake_loader(cfg, **kwargs):
        seen.update(kwargs)
        return [[{"image_id": 0}]]

    monkeypatch.setattr(trainer_module, "build_detection_train_loader", fake_loader)
    trainer_module.BoneAgeTrainer.build_train_loader(_cfg(few_annotated, 2.0))
    assert isinstance(seen["sampler"], RepeatFactorTrainingSampler)
    assert seen["sampler"]._int_part.tolist()[: ANNOTATED + 1] == [2.0] * ANNOTATED + [1.0]
    seen.clear()
    trainer_module.BoneAgeTrainer.build_train_loader(_cfg(few_annotated, 1.0))
    assert set(seen) == {"mapper"}
