"""The LazyConfig twins of the R18 demo yamls: the same module tree (state-dict keys and shapes),
and with the same weights the same output on a fixed film."""

from __future__ import annotations

import pytest
import torch
from detectron2.config import instantiate
from detectron2.modeling import build_model
from detectron2.structures import Instances

from boneage_d2 import model_zoo
from boneage_d2.engine import load_config
from boneage_d2.engine.predictor import BoneAgePredictor
from boneage_d2.phantom import PhantomConfig, sample_phantom

MODELS = ["Global", "ALA-Net", "HandSeg-RAN"]


def _assert_same(a, b, where: str = "output") -> None:
    """Equal outputs: tensors bit for bit, Instances field by field, containers recursively."""
    if isinstance(a, Instances):
        assert a.image_size == b.image_size and a.get_fields().keys() == b.get_fields().keys()
        for k in a.get_fields():
            _assert_same(a.get(k), b.get(k), f"{where}.{k}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif hasattr(a, "tensor"):  # Boxes
        _assert_same(a.tensor, b.tensor, where)
    elif isinstance(a, torch.Tensor):  # bit for bit (NaN: an age not assessed, in both)
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)
    else:
        assert a == b, where


@pytest.mark.parametrize("name", MODELS)
def test_lazy_and_yaml_configs_build_the_same_model(name):
    cfg = load_config(f"{name}/R18-phantom-demo.yaml", ["MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    from_yaml = build_model(cfg).eval()
    lazy = model_zoo.get_config(f"{name}/R18-phantom-demo.py")
    from_lazy = instantiate(lazy.model).eval()

    yaml_state, lazy_state = from_yaml.state_dict(), from_lazy.state_dict()
    assert {k: v.shape for k, v in lazy_state.items()} == {
        k: v.shape for k, v in yaml_state.items()
    }
    from_lazy.load_state_dict(yaml_state)  # strict: every key, every shape

    # A phantom film through the yaml config's own input pipeline, to both models.
    film = sample_phantom(PhantomConfig(image_long_side=256), seed=5, image_id=0).image
    inputs = [BoneAgePredictor(cfg).model_input(film, male=True)]
    with torch.no_grad():
        _assert_same(from_yaml(inputs), from_lazy(inputs))
