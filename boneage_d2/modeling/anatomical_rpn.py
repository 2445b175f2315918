"""``AnatomicalRPN``: Detectron2's RPN that leaves images without ROI annotations out of its loss,
and ranks its proposals in one order in every runtime.

Detectron2's RPN trains every anchor of an image with no ground-truth boxes as background. For
ALA-Net such an image is one without hand keypoints (usable for the age loss only), not a hand
with no joints, so all its anchors are ignored instead.

At inference the top-k, NMS and cut of the proposals follow ``roi_ranking.ranking_key``
(objectness, then the box, then the anchor): equal scores are ordered the same way by torch and
by an exported ONNX graph, so the eager and exported models return the same ROIs in the same
order (docs/export.md, "ROI order").
"""

from __future__ import annotations

import torch
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator import RPN
from detectron2.modeling.proposal_generator.proposal_utils import find_top_rpn_proposals

from .roi_ranking import rank_scores

__all__ = ["AnatomicalRPN"]


@PROPOSAL_GENERATOR_REGISTRY.register()
class AnatomicalRPN(RPN):
    """RPN trained on anatomical ROI boxes; an image with no boxes contributes no RPN loss.
    Inference proposals come best first in a total order (ties broken by the box)."""

    @torch.no_grad()
    def label_and_sample_anchors(self, anchors, gt_instances):
        gt_labels, matched_gt_boxes = super().label_and_sample_anchors(anchors, gt_instances)
        for labels, inst in zip(gt_labels, gt_instances):
            if len(inst) == 0:
                labels.fill_(-1)  # ignore: unannotated, not "no joints here"
        return gt_labels, matched_gt_boxes

    def predict_proposals(self, anchors, pred_objectness_logits, pred_anchor_deltas, image_sizes):
        """Detectron2's proposals, ranked by ``rank_scores`` instead of the raw logits (one
        feature map, at inference; training keeps Detectron2's own ranking). The proposals keep
        their real ``objectness_logits``."""
        if self.training or len(pred_objectness_logits) != 1:
            return super().predict_proposals(
                anchors, pred_objectness_logits, pred_anchor_deltas, image_sizes
            )
        with torch.no_grad():
            boxes = self._decode_proposals(anchors, pred_anchor_deltas)
            scores, logits_by_rank = rank_scores(pred_objectness_logits[0], boxes[0])
            proposals = find_top_rpn_proposals(
                boxes,
                [scores],
                image_sizes,
                self.nms_thresh,
                self.pre_nms_topk[False],
                self.post_nms_topk[False],
                self.min_box_size,
                False,
            )
            for p, logits in zip(proposals, logits_by_rank):
                p.objectness_logits = logits[(-p.objectness_logits).long()]
        return proposals
