"""How fast does a bone-age regressor learn from hand crops, without the detector around it?

    python tools/crop_regressor_ablation.py \
        --config-file configs/HandSeg-RAN/R18-phantom-demo.yaml --arch ran --view crop \
        --iters 300 [--optimizer boneage] [BONEAGE.RAN.ZERO_INIT_RESIDUAL False ...]

The training and validation splits of the config are read once through the model's own mapper
(no augmentation) and cut into the regressor's inputs: the largest ground-truth hand's masked
square crop (``--view crop``, what HandSeg-RAN's regressor reads in training) or the whole film
squared (``--view whole``), both at ``BONEAGE.RAN.INPUT_SIZE``. They are cached as uint8 in
``--cache``. A regressor then trains on them alone (Adam, or with ``--optimizer boneage`` the
trainer's optimizer from the config; warm-up + cosine, L1 on the normalised age, the sex bit at
the last layer, as the demo configs) and the validation MAE is printed
beside the mean predictor's. ``--arch ran`` is the config's residual attention network (trailing
opts change it), ``--arch resnet18`` torchvision's ResNet-18 for comparison.

This separates what the regressor learns per crop from the detector's cost per iteration
(docs/learning_speed.md, "HandSeg-RAN").
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog
from torch import nn
from tqdm import tqdm

from boneage_d2.data.mapper import BoneAgeDatasetMapper
from boneage_d2.engine import ConfigError, build_boneage_optimizer, load_config, validate_config
from boneage_d2.modeling.hand_crops import hand_crops, whole_image_crop
from boneage_d2.modeling.handseg_rcnn import largest_hand
from boneage_d2.modeling.residual_attention import ResidualAttentionNetwork

NO_AUGMENTATION = [
    "BONEAGE.INPUT.ROTATION_DEG",
    "0.0",
    "BONEAGE.INPUT.CROP_FRACTION",
    "1.0",
    "BONEAGE.INPUT.HFLIP",
    "False",
    "BONEAGE.INPUT.RANDOM_SCALE",
    "(1.0, 1.0)",
]


def regressor_inputs(cfg, dataset: str) -> dict[str, torch.Tensor]:
    """``crop`` / ``whole`` [N, 1, S, S] uint8, ``age`` [N] months, ``male`` [N] of a split."""
    mapper = BoneAgeDatasetMapper(cfg, is_train=True)
    size, out = cfg.BONEAGE.RAN.INPUT_SIZE, {"crop": [], "whole": [], "age": [], "male": []}
    args = dict(size=size, background=cfg.BONEAGE.HANDSEG.BACKGROUND_VALUE, square=True)
    for record in tqdm(DatasetCatalog.get(dataset), desc=f"crops of {dataset}"):
        d = mapper(record)
        image, hands = d["image"].float(), d["instances"]
        if len(hands) == 0 or d.get("boneage") is None:
            continue
        if not hands.has("gt_masks"):
            raise SystemExit(
                f"error: {dataset}: {record['file_name']}: its hands have no masks (convert with "
                "--derive-masks, or give a split with segmentations)"
            )
        hand = largest_hand(hands)
        crop, _ = hand_crops(image, hand.gt_boxes.tensor, hand.gt_masks.tensor, None, **args)
        whole, _ = whole_image_crop(image, **args)
        out["crop"].append(crop[0, :1].round().to(torch.uint8))
        out["whole"].append(whole[:1].round().to(torch.uint8))
        out["age"].append(float(d["boneage"]))
        out["male"].append(float(d["male"]))
    return {
        k: torch.stack(v) if k in ("crop", "whole") else torch.tensor(v) for k, v in out.items()
    }


class CropRegressor(nn.Module):
    """Backbone -> global average pool -> [feature, sex bit] -> one linear output."""

    def __init__(self, cfg, arch: str):
        super().__init__()
        if arch == "ran":
            args = ResidualAttentionNetwork.from_config(cfg)
            self.body = ResidualAttentionNetwork(**{**args, "out_features": ("stage4",)})
            width = args["out_channels"]
        else:
            import torchvision

            self.body = torchvision.models.resnet18(num_classes=1)
            self.body.fc = nn.Identity()
            width = 512
        self.arch = arch
        mean, std = cfg.MODEL.PIXEL_MEAN[0], cfg.MODEL.PIXEL_STD[0]
        self.register_buffer("mean_std", torch.tensor([mean, std]))
        self.fc = nn.Linear(width + 1, 1)

    def forward(self, x: torch.Tensor, male: torch.Tensor) -> torch.Tensor:
        x = (x.float().expand(-1, 3, -1, -1) - self.mean_std[0]) / self.mean_std[1]
        f = self.body(x)
        f = f["stage4"].mean(dim=(2, 3)) if self.arch == "ran" else f
        return self.fc(torch.cat([f, (2.0 * male - 1.0)[:, None]], dim=1))[:, 0]


def train_and_evaluate(
    cfg, data, arch: str, view: str, iters: int, batch: int, lr: float, optimizer: str = "adam"
) -> dict:
    torch.manual_seed(cfg.SEED if cfg.SEED >= 0 else 0)
    net = CropRegressor(cfg, arch)
    if optimizer == "boneage":  # the trainer's: per-parameter decay rules, gradient clipping
        opt = build_boneage_optimizer(cfg, net)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    train, val = data["train"], data["val"]
    mean, std = float(train["age"].mean()), cfg.BONEAGE.AGE_STD_MONTHS
    warmup = min(50, iters // 10)
    start = time.time()
    for it in tqdm(range(iters), desc=f"{arch} on {view}"):
        scale = min(1.0, (it + 1) / max(warmup, 1)) * 0.5 * (1 + math.cos(math.pi * it / iters))
        for group in opt.param_groups:
            group["lr"] = lr * scale
        idx = torch.randint(0, len(train["age"]), (batch,))
        pred = net(train[view][idx], train["male"][idx])
        loss = F.l1_loss(pred, (train["age"][idx] - mean) / std)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.time() - start
    net.eval()
    with torch.no_grad():
        pred = torch.cat(
            [
                net(val[view][i : i + 64], val["male"][i : i + 64])
                for i in range(0, len(val["age"]), 64)
            ]
        )
    months = pred * std + mean
    return {
        "mae": float((months - val["age"]).abs().mean()),
        "mean_predictor_mae": float((mean - val["age"]).abs().mean()),
        "pred_sd": float(months.std()),
        "params": sum(p.numel() for p in net.parameters()),
        "train_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--arch", choices=("ran", "resnet18"), default="ran")
    p.add_argument("--view", choices=("crop", "whole"), default="crop")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--optimizer",
        choices=("adam", "boneage"),
        default="adam",
        help="plain Adam, or the trainer's optimizer built from the config (SOLVER.*)",
    )
    p.add_argument("--cache", default="outputs/crop_ablation/inputs.pt")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides (KEY VALUE ...)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config_file, [*NO_AUGMENTATION, *args.opts])
        if not os.path.isfile(args.cache):  # the splits are read only to build the cache
            validate_config(cfg, training=True)
    except ConfigError as e:
        p.error(str(e))
    if os.path.isfile(args.cache):
        data = torch.load(args.cache)
        cached = data["train"]["crop"].shape[-1]
        if cached != cfg.BONEAGE.RAN.INPUT_SIZE:
            p.error(
                f"{args.cache}: cached crops are {cached} px, BONEAGE.RAN.INPUT_SIZE is "
                f"{cfg.BONEAGE.RAN.INPUT_SIZE}; delete the cache or give another --cache"
            )
    else:
        splits = {"train": cfg.DATASETS.TRAIN[0], "val": cfg.DATASETS.TEST[0]}
        data = {k: regressor_inputs(cfg, name) for k, name in splits.items()}
        os.makedirs(os.path.dirname(os.path.abspath(args.cache)), exist_ok=True)
        torch.save(data, args.cache)
    r = train_and_evaluate(
        cfg, data, args.arch, args.view, args.iters, args.batch, args.lr, args.optimizer
    )
    print(
        f"{args.arch} on {args.view}, {args.iters} iterations of {args.batch}: val MAE "
        f"{r['mae']:.2f} months (mean predictor {r['mean_predictor_mae']:.2f}), prediction SD "
        f"{r['pred_sd']:.1f}, {r['params'] / 1e6:.2f} M parameters, {r['train_seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
