"""LazyConfig model: ``GlobalBoneAgeRegressor`` (pooled res5 + sex embedding + age head) at the
size of configs/Global/R18-phantom-demo.yaml: ResNet-18 with BatchNorm, an L1 regression head,
inputs padded to a 141-px square (a 128-px long side, x1.1 random scale)."""

from detectron2.config import LazyCall as L
from detectron2.modeling.backbone import BasicStem, ResNet

from boneage_d2.modeling import GlobalBoneAgeRegressor, RegressionAgeHead

model = L(GlobalBoneAgeRegressor)(
    backbone=L(ResNet)(
        stem=L(BasicStem)(in_channels=3, out_channels=64, norm="BN"),
        stages=L(ResNet.make_default_stages)(depth=18, norm="BN"),
        out_features=["res5"],
        freeze_at=0,
    ),
    in_feature="res5",
    age_head=L(RegressionAgeHead)(
        in_dim=512 + 32,  # pooled res5 + the sex embedding
        hidden_dims=[256],
        loss="l1",
        mean_months=127.0,
        std_months=42.0,
        age_range_months=(0.0, 240.0),
    ),
    gender_embed_dim=32,
    pixel_mean=[100.0, 100.0, 100.0],
    pixel_std=[60.0, 60.0, 60.0],
    pad_square_size=141,
    pool="avg",
    interval_coverage=0.9,
)
