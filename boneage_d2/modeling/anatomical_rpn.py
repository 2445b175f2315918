"""``AnatomicalRPN``: Detectron2's RPN that leaves images without ROI annotations out of its loss.

Detectron2's RPN trains every anchor of an image with no ground-truth boxes as background. For
ALA-Net such an image is one without hand keypoints (usable for the age loss only), not a hand
with no joints, so all its anchors are ignored instead.
"""

from __future__ import annotations

import torch
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator import RPN

__all__ = ["AnatomicalRPN"]


@PROPOSAL_GENERATOR_REGISTRY.register()
class AnatomicalRPN(RPN):
    """RPN trained on anatomical ROI boxes; an image with no boxes contributes no RPN loss."""

    @torch.no_grad()
    def label_and_sample_anchors(self, anchors, gt_instances):
        gt_labels, matched_gt_boxes = super().label_and_sample_anchors(anchors, gt_instances)
        for labels, inst in zip(gt_labels, gt_instances):
            if len(inst) == 0:
                labels.fill_(-1)  # ignore: unannotated, not "no joints here"
        return gt_labels, matched_gt_boxes
