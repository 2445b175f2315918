"""Model-independent input flags: each fires on its case and stays off on clean films."""

import numpy as np
import pytest

from boneage_d2.io.image_checks import ImageChecks
from boneage_d2.io.radiograph import read_radiograph
from boneage_d2.phantom import PhantomConfig, sample_phantom
from tests.fixtures import RSNA_REAL, RSNA_SAMPLE


def test_blank_and_small_images_are_flagged():
    checks = ImageChecks()
    assert checks.flags(np.zeros((400, 300), np.uint8)) == ["blank_image"]
    assert checks.flags(np.full((400, 300), 255, np.uint8)) == ["blank_image"]
    tiny = np.random.default_rng(0).integers(0, 255, (32, 32)).astype(np.uint8)
    assert checks.flags(tiny) == ["image_too_small"]
    assert checks.flags(np.zeros((10, 10), np.uint8)) == ["image_too_small", "blank_image"]
    assert ImageChecks(min_side_px=0, min_range=0).flags(np.zeros((10, 10), np.uint8)) == []


def test_clean_phantom_films_are_not_flagged():
    cfg = PhantomConfig()
    for i in range(12):  # every distractor kind appears among these (borders, noise, exposure)
        assert ImageChecks().flags(sample_phantom(cfg, seed=0, image_id=i).image) == [], i


def test_real_films_are_not_flagged():
    films = sorted(RSNA_SAMPLE.glob("*.png")) + sorted((RSNA_REAL / "images").glob("*.png"))[:50]
    if not films:
        pytest.skip("no real films beside the checkout")
    for path in films:
        assert ImageChecks().flags(read_radiograph(path)) == [], path.name
