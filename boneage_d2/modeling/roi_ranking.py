"""A deterministic ranking of ALA-Net's anchors and ROIs: objectness first, ties broken by the
box, then by the anchor.

An RPN ranks its anchors by objectness in a top-k, an NMS and a cut, and each runtime orders
equal scores its own way: a trained model's logits tie (a uniform background gives equal
logits; a saturated sigmoid reports 1.0 for several ROIs), so with torch and onnxruntime the
ROI numbers, and even which ROIs pass the cuts, depended on the runtime. ``ranking_key`` gives
every anchor a unique int64 key, so any sort, top-k or NMS over ``rank_scores`` follows one
total order. Scores are compared at the precision prediction records report them
(``SCORE_DECIMALS``) and box edges in whole pixels: finer differences are float noise between
runtimes (onnxruntime's vectorised sigmoid differs from torch's in the last bit), not a ranking.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["SCORE_DECIMALS", "rank_scores", "ranking_key"]

SCORE_DECIMALS = 4  # as prediction records report ROI scores
# Bits of the key below the score, least significant last: the box's top and left edge (whole
# pixels, clipped to 0-4095) and the anchor's position (unique: up to 2^20 anchors per image);
# with the score's 14 bits, 58 in all. Only the position must fit for the key to be unique.
_EDGE_BITS, _POSITION_BITS = 12, 20


def ranking_key(logits: Tensor, boxes: Tensor) -> Tensor:
    """An int64 key per anchor ([..., R] for ``logits`` [..., R], ``boxes`` XYXY [..., R, 4])
    whose ascending order is: higher score (sigmoid of the logit, to ``SCORE_DECIMALS``
    decimals) first, then the smaller top edge, then the smaller left edge, then the earlier
    anchor. Unique per image."""
    top = 10**SCORE_DECIMALS
    score = torch.sigmoid(torch.nan_to_num(logits.float(), nan=-float("inf")))
    q = torch.round(score * top).to(torch.int64)
    edges = torch.round(boxes[..., :2]).clamp(0, 2**_EDGE_BITS - 1).to(torch.int64)
    position = torch.ones_like(q).cumsum(-1) - 1
    key = top - q  # 0 for a score of 1
    key = key * 2**_EDGE_BITS + edges[..., 1]
    key = key * 2**_EDGE_BITS + edges[..., 0]
    return key * 2**_POSITION_BITS + position


def rank_scores(logits: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
    """``(scores, logits_by_rank)``: per anchor, minus its rank under ``ranking_key`` as a float
    (all distinct; ``-inf`` for a non-finite logit, which proposal filters drop), to rank with
    in place of the logits; and the logits in rank order, to give a ranked anchor its real
    logit back (``logits_by_rank[..., -score]``)."""
    order = torch.argsort(ranking_key(logits, boxes), dim=-1)
    rank = torch.argsort(order, dim=-1)
    scores = torch.where(torch.isfinite(logits), -rank.float(), -float("inf"))
    return scores, torch.gather(logits, -1, order)
