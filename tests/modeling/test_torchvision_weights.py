"""tools/convert_torchvision_resnet.py: a randomly initialised torchvision ResNet, converted, gives
the same features in Detectron2's ResNet under the settings the tool writes."""

import pytest
import torch
import torchvision
import yaml
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_resnet_backbone

from boneage_d2.modeling.torchvision_weights import (
    TorchvisionResNetError,
    convert_torchvision_resnet,
)
from tests.cli import load_tool

convert_tool = load_tool("convert_torchvision_resnet")
IMAGENET_MEAN_RGB = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD_RGB = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _random_resnet(depth: int) -> torch.nn.Module:
    torch.manual_seed(depth)
    net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    for m in net.modules():  # non-trivial statistics, so a swapped norm would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def _torchvision_res5(net, rgb_0_255: torch.Tensor) -> torch.Tensor:
    x = (rgb_0_255 / 255.0 - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


@pytest.mark.parametrize("depth", [18, 50])
def test_converted_weights_reproduce_torchvision_features(tmp_path, depth):
    net = _random_resnet(depth)
    src, dst = tmp_path / f"resnet{depth}.pth", tmp_path / "out" / f"R-{depth}.pkl"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, src)
    assert convert_tool.main(["--input", str(src), "--output", str(dst)]) == 0

    settings = yaml.safe_load(dst.with_suffix(".yaml").read_text())
    cfg = get_cfg()
    cfg.merge_from_other_cfg(cfg.__class__(settings))
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res5"]
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    assert cfg.MODEL.WEIGHTS == str(dst) and cfg.MODEL.RESNETS.DEPTH == depth

    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    wrapper = torch.nn.Module()
    wrapper.backbone = backbone  # as inside a meta-architecture: names found by the heuristics
    DetectionCheckpointer(wrapper).load(cfg.MODEL.WEIGHTS)

    rgb = torch.randint(0, 256, (1, 3, 96, 128), generator=torch.Generator().manual_seed(1)).float()
    bgr = rgb[:, [2, 1, 0]]  # Detectron2's INPUT.FORMAT BGR
    mean = torch.tensor(cfg.MODEL.PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(cfg.MODEL.PIXEL_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = backbone((bgr - mean) / std)["res5"]
        expected = _torchvision_res5(net, rgb)
    scale = expected.abs().max().item()
    assert scale > 0.1
    torch.testing.assert_close(ours, expected, atol=1e-5 * scale, rtol=1e-4)


def test_every_backbone_tensor_is_converted():
    net = _random_resnet(18)
    converted, _ = convert_torchvision_resnet(net.state_dict())
    wanted = {k for k in net.state_dict() if not k.startswith("fc.") and "num_batches" not in k}
    assert len(converted["model"]) == len(wanted)
    assert converted["matching_heuristics"] is True


def test_bad_checkpoints_get_clear_errors(tmp_path, capsys):
    with pytest.raises(TorchvisionResNetError, match="conv1.weight"):
        convert_torchvision_resnet({"backbone.weight": torch.zeros(1)})
    state = _random_resnet(18).state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("layer4.1.")}
    with pytest.raises(TorchvisionResNetError, match=r"blocks per stage \[2, 2, 2, 1\]"):
        convert_torchvision_resnet(partial)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert convert_tool.main(["--input", str(bad), "--output", str(tmp_path / "x.pkl")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "x.pkl").exists()
    assert convert_tool.main(["--input", str(tmp_path / "missing.pth"), "--output", "x.pkl"]) == 2
    assert convert_tool.main(["--input", str(bad), "--output", str(tmp_path / "x.pth")]) == 2
