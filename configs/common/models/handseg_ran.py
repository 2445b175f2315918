"""LazyConfig model: ``HandSegBoneAgeRCNN`` (Mask R-CNN hand segmentation feeding a residual
attention regressor) at the size of configs/HandSeg-RAN/R18-phantom-demo.yaml: ResNet-18-FPN
with GroupNorm and 64 channels, small box and mask heads, the detector at half the 192-px input,
and a short, wide residual attention network with BatchNorm reading 128-px hand crops."""

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.modeling.backbone import FPN, BasicStem, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.proposal_generator import RPN, StandardRPNHead
from detectron2.modeling.roi_heads import (
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    MaskRCNNConvUpsampleHead,
)

from boneage_d2.modeling import HandSegBoneAgeRCNN, RegressionAgeHead, ResidualAttentionNetwork
from boneage_d2.modeling.hand_roi_heads import HandROIHeads

FPN_CHANNELS = 64
LEVELS = ["p2", "p3", "p4", "p5"]
SCALES = (1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32)

model = L(HandSegBoneAgeRCNN)(
    backbone=L(FPN)(
        bottom_up=L(ResNet)(
            stem=L(BasicStem)(in_channels=3, out_channels=64, norm="GN"),
            stages=L(ResNet.make_default_stages)(depth=18, norm="GN"),
            out_features=["res2", "res3", "res4", "res5"],
            freeze_at=0,
        ),
        in_features="${.bottom_up.out_features}",
        out_channels=FPN_CHANNELS,
        norm="GN",
        top_block=L(LastLevelMaxPool)(),
    ),
    proposal_generator=L(RPN)(
        in_features=["p2", "p3", "p4", "p5", "p6"],
        head=L(StandardRPNHead)(in_channels=FPN_CHANNELS, num_anchors=3),
        anchor_generator=L(DefaultAnchorGenerator)(
            sizes=[[32], [64], [128], [256], [512]],
            aspect_ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64],
            offset=0.0,
        ),
        anchor_matcher=L(Matcher)(
            thresholds=[0.3, 0.7], labels=[0, -1, 1], allow_low_quality_matches=True
        ),
        box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_topk=(1000, 500),
        post_nms_topk=(64, 200),
        nms_thresh=0.7,
    ),
    roi_heads=L(HandROIHeads)(
        num_classes=1,  # hand
        batch_size_per_image=16,
        positive_fraction=0.25,
        proposal_matcher=L(Matcher)(
            thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False
        ),
        box_in_features=LEVELS,
        box_pooler=L(ROIPooler)(
            output_size=7, scales=SCALES, sampling_ratio=0, pooler_type="ROIAlignV2"
        ),
        box_head=L(FastRCNNConvFCHead)(
            input_shape=ShapeSpec(channels=FPN_CHANNELS, height=7, width=7),
            conv_dims=[],
            fc_dims=[256, 256],
        ),
        box_predictor=L(FastRCNNOutputLayers)(
            input_shape=ShapeSpec(channels=256),
            box2box_transform=L(Box2BoxTransform)(weights=(10.0, 10.0, 5.0, 5.0)),
            num_classes="${..num_classes}",
            test_score_thresh=0.05,
            test_nms_thresh=0.5,
            test_topk_per_image=10,
        ),
        mask_in_features=LEVELS,
        mask_pooler=L(ROIPooler)(
            output_size=14, scales=SCALES, sampling_ratio=0, pooler_type="ROIAlignV2"
        ),
        mask_head=L(MaskRCNNConvUpsampleHead)(
            input_shape=ShapeSpec(channels=FPN_CHANNELS, height=14, width=14),
            num_classes="${..num_classes}",
            conv_dims=[64, 64, 64, 64, 64],  # 4 convs, then the deconvolution
            conv_norm="GN",
        ),
    ),
    pixel_mean=[100.0, 100.0, 100.0],
    pixel_std=[60.0, 60.0, 60.0],
    input_format="BGR",
    regressor=L(ResidualAttentionNetwork)(
        in_channels=3,
        stem_channels=32,
        stage_channels=(128, 256, 512),
        out_channels=512,
        modules_per_stage=(1, 1, 1),
        mask_downsamples=(3, 2, 1),
        num_final_units=1,
        pre_post_units=0,
        trunk_units=1,
        mask_units=1,
        norm="BN",
        zero_init_residual=True,
        out_features=("stage4",),
    ),
    age_head=L(RegressionAgeHead)(
        in_dim=512 + 1,  # the pooled regressor feature + the sex bit
        hidden_dims=[],
        loss="l1",
        mean_months=127.0,
        std_months=42.0,
        age_range_months=(0.0, 240.0),
    ),
    gender_feature="bit",
    use_segmentation=True,
    train_mask_source="gt",
    mask_gating="hard",
    input_size=128,
    square_crop=True,
    hand_score_thresh=0.5,
    max_hands_test=3,
    train_all_hands=False,
    pad_square_size=96,  # the 192-px input at DETECTOR_SCALE 0.5
    detector_scale=0.5,
)
