"""GlobalBoneAgeRegressor: the Detectron2 model contract, padding-invariant pooling, gender."""

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from boneage_d2.engine import load_config
from boneage_d2.modeling.inputs import masked_global_avg_pool, masked_global_pool
from tests.fixtures import CONFIGS

BASE = str(CONFIGS / "Base-BoneAge.yaml")
SMALL = [
    "MODEL.RESNETS.DEPTH",
    "18",
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    "64",
    "BONEAGE.INPUT.LONG_SIDE_TRAIN",
    "128",
    "BONEAGE.INPUT.LONG_SIDE_TEST",
    "128",
]


def _inputs(sizes, male=True):
    g = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.randint(0, 255, (3, h, w), dtype=torch.uint8, generator=g),
            "male": male,
            "boneage": 100.0,
        }
        for h, w in sizes
    ]


@pytest.mark.parametrize("head", ["OrdinalAgeHead", "RegressionAgeHead"])
def test_train_returns_named_loss_and_eval_returns_months(head):
    torch.manual_seed(0)
    model = build_model(load_config(BASE, SMALL + ["BONEAGE.HEAD.NAME", head]))
    losses = model(_inputs([(64, 48), (48, 64)]))
    assert set(losses) == {"loss_age"} and losses["loss_age"].requires_grad
    losses["loss_age"].backward()
    model.eval()
    with torch.no_grad():
        out = model(_inputs([(64, 48)]))
    assert len(out) == 1 and out[0]["boneage"].shape == ()
    assert 0 < out[0]["boneage"].item() < 240


def test_prediction_does_not_depend_on_batch_padding():
    torch.manual_seed(0)
    model = build_model(load_config(BASE, SMALL)).eval()
    small = _inputs([(64, 48)])
    with torch.no_grad():
        alone = model(small)[0]["boneage"]
        padded = model(small + _inputs([(128, 128)]))[0]["boneage"]
    assert alone.item() == pytest.approx(padded.item(), abs=1e-3)


def test_masked_pool_ignores_padding():
    f = torch.ones(2, 3, 4, 4)
    f[0, :, 2:, :] = 100.0  # padding rows of image 0
    pooled = masked_global_avg_pool(f, [(16, 32), (32, 32)], stride=8)
    assert torch.allclose(pooled, torch.ones(2, 3))


def test_max_pool_ignores_padding_and_avgmax_doubles_the_width():
    f = torch.zeros(2, 3, 4, 4)
    f[0, :, 2:, :] = 100.0  # padding rows of image 0
    f[0, 1, 0, 0] = 5.0
    pooled = masked_global_pool(f, [(16, 32), (32, 32)], stride=8, pool="max")
    assert pooled.tolist() == [[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]  # the padding's 100 never wins
    both = masked_global_pool(f, [(16, 32), (32, 32)], stride=8, pool="avgmax")
    assert both.shape == (2, 6)
    with pytest.raises(ValueError, match="BONEAGE.GLOBAL.POOL='sum'"):
        masked_global_pool(f, [(16, 32)] * 2, stride=8, pool="sum")


@pytest.mark.parametrize("pool", ["max", "avgmax"])
def test_pooling_choice_trains_and_predicts(pool):
    torch.manual_seed(0)
    model = build_model(load_config(BASE, SMALL + ["BONEAGE.GLOBAL.POOL", pool]))
    with EventStorage():
        loss = model(_inputs([(64, 48), (48, 64)]))["loss_age"]
    loss.backward()
    model.eval()
    with torch.no_grad():
        alone = model(_inputs([(64, 48)]))[0]["boneage"]
        padded = model(_inputs([(64, 48), (128, 128)]))[0]["boneage"]
    assert alone.item() == pytest.approx(padded.item(), abs=1e-3)


def test_gender_changes_the_prediction_path():
    torch.manual_seed(0)
    model = build_model(load_config(BASE, SMALL + ["BONEAGE.GENDER.EMBED_DIM", "8"])).eval()
    with torch.no_grad():
        for p in model.gender.parameters():
            p.normal_(0, 1.0)
        male = model(_inputs([(64, 48)], male=True))[0]["boneage"]
        female = model(_inputs([(64, 48)], male=False))[0]["boneage"]
    assert male.item() != pytest.approx(female.item(), abs=1e-4)


def test_missing_label_or_sex_is_a_clear_error():
    model = build_model(load_config(BASE, SMALL))
    x = _inputs([(64, 48)])
    x[0]["boneage"] = None
    with pytest.raises(KeyError, match="no 'boneage' label"):
        model(x)
    x = _inputs([(64, 48)])
    del x[0]["male"]
    with pytest.raises(KeyError, match="no 'male' entry"):
        model(x)


def test_unknown_feature_is_a_clear_error():
    with pytest.raises(KeyError, match="BONEAGE.GLOBAL.IN_FEATURE='res4'.*available"):
        build_model(load_config(BASE, SMALL + ["BONEAGE.GLOBAL.IN_FEATURE", "res4"]))
