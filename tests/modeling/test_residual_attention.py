"""Residual attention network: Eq. 1 inside each module, shapes at any size, the backbone."""

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone

from boneage_d2.config import add_boneage_config
from boneage_d2.modeling.residual_attention import (
    AttentionModule,
    ResidualAttentionNetwork,
    SoftMaskBranch,
    attention_maps_from_logits,
    attention_residual,
    ran_norm,
)

TINY = {
    "stem_channels": 8,
    "stage_channels": (8, 16, 16),
    "out_channels": 24,
    "num_final_units": 1,
}
PAPER_NAMES = ["Att1", "Att2_1", "Att2_2", "Att3_1", "Att3_2", "Att3_3"]


def test_attention_residual_is_trunk_times_one_plus_sigmoid_mask():
    trunk = torch.tensor([[[[2.0, -1.0]]]])
    logits = torch.tensor([[[[0.0, 100.0]]]])
    assert torch.allclose(attention_residual(trunk, logits), torch.tensor([[[[3.0, -2.0]]]]))


def test_module_output_is_post_of_trunk_times_one_plus_mask():
    """Capture T(x), the mask logits and what enters the post units: T * (1 + sigmoid(M))."""
    torch.manual_seed(0)
    module = AttentionModule(8, num_downsamples=2, norm="GN").eval()
    seen = {}
    module.trunk.register_forward_hook(lambda m, i, o: seen.__setitem__("T", o))
    module.mask.register_forward_hook(lambda m, i, o: seen.__setitem__("M", o))
    module.post.register_forward_pre_hook(lambda m, i: seen.__setitem__("post_in", i[0]))
    x = torch.randn(2, 8, 13, 11)
    out, logits = module(x)
    assert torch.equal(logits, seen["M"])
    expected = seen["T"] * (1 + torch.sigmoid(seen["M"]))
    assert torch.allclose(seen["post_in"], expected, atol=1e-6)
    assert torch.allclose(out, module.post(expected), atol=1e-6)
    assert out.shape == logits.shape == x.shape


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (13, 11), (32, 32), (37, 29)])
def test_soft_mask_branch_keeps_any_size(size):
    """The hourglass skip connections must match for odd sizes and sizes below 2**depth."""
    branch = SoftMaskBranch(8, num_downsamples=3, norm="GN")
    assert branch(torch.randn(1, 8, *size)).shape == (1, 8, *size)


@pytest.mark.parametrize("size", [(64, 64), (65, 47), (33, 91), (17, 17)])
def test_network_shapes_and_attention_maps(size):
    torch.manual_seed(0)
    net = ResidualAttentionNetwork(
        **TINY, out_features=("stage1", "stage2", "stage3", "stage4")
    ).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        feats, logits = net.forward_with_attention(x)
    h, w = size
    expect = {}
    for name, stride in zip(("stage1", "stage2", "stage3", "stage4"), (4, 8, 16, 32)):
        expect[name] = (-(-h // stride), -(-w // stride))
        assert feats[name].shape[-2:] == expect[name], name
        assert feats[name].shape[1] == net.output_shape()[name].channels
    assert list(logits) == PAPER_NAMES == net.attention_module_names
    stage_of = {"Att1": "stage1", "Att2": "stage2", "Att3": "stage3"}
    for name, t in logits.items():
        assert t.shape[-2:] == expect[stage_of[name[:4]]]
        assert attention_maps_from_logits(t).shape == (2, *expect[stage_of[name[:4]]])
    assert torch.equal(net(x)["stage4"], feats["stage4"])


def test_module_counts_and_names_are_configurable():
    net = ResidualAttentionNetwork(**TINY, modules_per_stage=(2, 1, 1), mask_downsamples=(2, 1, 1))
    assert net.attention_module_names == ["Att1_1", "Att1_2", "Att2", "Att3"]
    _, logits = net.forward_with_attention(torch.randn(1, 3, 40, 40))
    assert list(logits) == ["Att1_1", "Att1_2", "Att2", "Att3"]


def test_gradients_reach_the_stem_through_the_attention():
    net = ResidualAttentionNetwork(**TINY)
    net(torch.randn(2, 3, 48, 40))["stage4"].mean().backward()
    assert net.stem[0].weight.grad.abs().sum() > 0
    assert net.attention["Att1"].mask.head[-1].weight.grad.abs().sum() > 0


def test_zero_init_residual_starts_identity_units_as_the_identity():
    torch.manual_seed(0)
    net = ResidualAttentionNetwork(**TINY, norm="BN", zero_init_residual=True).train()
    x = torch.randn(2, 8, 10, 10)
    unit = net.attention["Att1"].trunk[0]
    assert torch.equal(unit(x), x)
    assert net.transitions[1].conv3.weight.abs().sum() > 0  # a projection unit keeps its init
    assert not torch.equal(ResidualAttentionNetwork(**TINY).attention["Att1"].trunk[0](x), x)
    net(torch.randn(2, 3, 48, 40))["stage4"].mean().backward()  # still learns everywhere
    assert net.stem[0].weight.grad.abs().sum() > 0 and unit.conv3.weight.grad.abs().sum() > 0
    cfg = add_boneage_config(get_cfg())
    cfg.BONEAGE.RAN.ZERO_INIT_RESIDUAL = True
    assert ResidualAttentionNetwork.from_config(cfg)["zero_init_residual"] is True


def test_norm_choices():
    assert isinstance(ran_norm("GN", 24), torch.nn.GroupNorm)
    assert ran_norm("GN", 24).num_groups == 4  # 24 is not a multiple of 32; >= 2 channels/group
    assert ran_norm("GN", 256).num_groups == 32
    assert isinstance(ran_norm("BN", 8), torch.nn.BatchNorm2d)
    with pytest.raises(ValueError, match="BONEAGE.RAN.NORM='SyncBN'"):
        ran_norm("SyncBN", 8)
    with pytest.raises(ValueError, match="OUT_FEATURES"):
        ResidualAttentionNetwork(**TINY, out_features=("res5",))


def test_registered_backbone_from_config():
    cfg = add_boneage_config(get_cfg())
    cfg.MODEL.BACKBONE.NAME = "build_residual_attention_backbone"
    cfg.BONEAGE.RAN.STEM_CHANNELS = 8
    cfg.BONEAGE.RAN.STAGE_CHANNELS = [8, 16, 16]
    cfg.BONEAGE.RAN.OUT_CHANNELS = 24
    cfg.BONEAGE.RAN.OUT_FEATURES = ["stage2", "stage4"]
    backbone = build_backbone(cfg, ShapeSpec(channels=3))
    shapes = backbone.output_shape()
    assert set(shapes) == {"stage2", "stage4"}
    assert (shapes["stage2"].channels, shapes["stage2"].stride) == (16, 8)
    assert (shapes["stage4"].channels, shapes["stage4"].stride) == (24, 32)
    out = backbone(torch.randn(1, 3, 64, 48))
    assert out["stage2"].shape == (1, 16, 8, 6) and out["stage4"].shape == (1, 24, 2, 2)
    # Paper-size defaults: Attention-92's widths and six modules.
    full = ResidualAttentionNetwork(add_boneage_config(get_cfg()))
    assert full.output_shape()["stage4"].channels == 2048
    assert full.attention_module_names == PAPER_NAMES
