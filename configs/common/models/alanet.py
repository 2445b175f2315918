"""LazyConfig model: ``ALANet`` at the size of configs/ALA-Net/R18-phantom-demo.yaml: the global
model's ResNet-18 (also giving res3), an anatomical RPN and ROI head on res3 (reduced to 128
channels), the max-pooled local feature, patch training and the ordinal head."""

from detectron2.config import LazyCall as L
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.proposal_generator import StandardRPNHead
from detectron2.modeling.roi_heads import FastRCNNConvFCHead
from torch import nn

from boneage_d2.modeling import ALANet, AnatomicalROIHeads, AnatomicalRPN, OrdinalAgeHead

from .global_regressor import model

LOCAL = 128  # channels of the reduced res3 map read by the RPN and the ROI head
ROI_FEATURE = 256  # width of the shared ROI head's feature (the local feature)


def _ordinal_head(in_dim: int, hidden_dims: list[int]):
    return L(OrdinalAgeHead)(
        in_dim=in_dim,
        hidden_dims=hidden_dims,
        num_ranks=241,  # 0..240 months at 1-month ranks
        rank_width_months=1.0,
        formulation="independent",
        mean_months=127.0,
        std_months=42.0,
    )


model._target_ = ALANet
model.backbone.out_features = ["res3", "res5"]
model.age_head = _ordinal_head(512 + 32 + ROI_FEATURE, [256])
model.local_in_feature = "res3"
model.local_reducer = L(Conv2d)(
    in_channels=128,
    out_channels=LOCAL,
    kernel_size=1,
    bias=False,
    norm=L(nn.BatchNorm2d)(num_features=LOCAL),
    activation=L(nn.ReLU)(),
)
model.proposal_generator = L(AnatomicalRPN)(
    in_features=["res3"],
    head=L(StandardRPNHead)(in_channels=LOCAL, num_anchors=1),
    anchor_generator=L(DefaultAnchorGenerator)(
        sizes=[[16]], aspect_ratios=[[1.0]], strides=[8], offset=0.0
    ),
    anchor_matcher=L(Matcher)(
        thresholds=[0.3, 0.7], labels=[0, -1, 1], allow_low_quality_matches=True
    ),
    box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
    batch_size_per_image=256,
    positive_fraction=0.5,
    pre_nms_topk=(600, 300),
    post_nms_topk=(100, 100),
    nms_thresh=0.5,
)
model.roi_heads = L(AnatomicalROIHeads)(
    num_classes=1,
    batch_size_per_image=512,
    positive_fraction=0.25,
    proposal_matcher=L(Matcher)(thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False),
    in_features=["res3"],
    pooler=L(ROIPooler)(
        output_size=7, scales=(1.0 / 8,), sampling_ratio=0, pooler_type="ROIAlignV2"
    ),
    box_head=L(FastRCNNConvFCHead)(
        input_shape=ShapeSpec(channels=LOCAL, height=7, width=7),
        conv_dims=[128, 128, 128, 128],
        fc_dims=[ROI_FEATURE],
        conv_norm="GN",
    ),
    patch_head=_ordinal_head(ROI_FEATURE, [256]),
    patch_loss_weight=1.0,
    local_feature_on=True,
    patch_rois="proposals",
)
model.num_rois = 17
model.use_local_feature = True
model.age_on = True
model.no_hand_mean_score = 0.1
