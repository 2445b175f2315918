"""ALA-Net's ROI order is deterministic (score, then box) in the eager and the exported models,
and the export's parity check compares ROIs as matched sets and checks their order."""

import json

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer

from boneage_d2.engine import BoneAgeTrainer, load_config
from boneage_d2.export.runtime import match_rois, rois_out_of_order
from boneage_d2.modeling.roi_ranking import rank_scores, ranking_key
from tests.cli import load_tool
from tests.fixtures import REPO

export_tool = load_tool("export_model")
ALANET = REPO / "configs/ALA-Net/R18-phantom-demo.yaml"
SMALL = ["BONEAGE.INPUT.LONG_SIDE_TRAIN", "128", "BONEAGE.INPUT.LONG_SIDE_TEST", "128"]
SMALL += ["MODEL.DEVICE", "cpu"]


def test_ranking_key_orders_by_score_then_box_then_anchor():
    # logits 20, 20.5 and 25 are all a score of 1.0 at the reported precision
    logits = torch.tensor([0.0, 20.0, 20.5, 3.0, 25.0, 0.0])
    boxes = torch.tensor(
        [
            [0, 0, 8, 8],
            [16, 8, 24, 16],  # score 1.0, top 8
            [8, 8.4, 16, 16],  # score 1.0, top 8, left 8: before the one at left 16
            [0, 0, 8, 8],
            [40, 0, 48, 8],  # score 1.0, top 0: the first of the three
            [0, 0, 8, 8],  # the same box and score as anchor 0: the anchor decides
        ],
        dtype=torch.float32,
    )
    assert torch.argsort(ranking_key(logits, boxes)).tolist() == [4, 2, 1, 3, 0, 5]
    perm = torch.tensor([5, 3, 1, 0, 2, 4])  # the order of distinct keys is the anchors' own
    assert perm[torch.argsort(ranking_key(logits[perm], boxes[perm]))].tolist()[:4] == [4, 2, 1, 3]
    scores, by_rank = rank_scores(logits[None], boxes[None])  # batched: [images, anchors]
    assert scores[0].tolist() == [-4.0, -2.0, -1.0, -3.0, -0.0, -5.0]
    assert torch.equal(by_rank[0][(-scores[0]).long()], logits)  # the real logits come back
    scores, _ = rank_scores(torch.tensor([1.0, float("nan"), 2.0]), boxes[:3])
    assert scores.tolist() == [-1.0, -float("inf"), -0.0]


def test_parity_matches_rois_as_sets_and_counts_order_changes():
    want = np.array([[0, 0, 8, 8], [8, 0, 16, 8], [0, 8, 8, 16]], dtype=np.float32)
    got = want[[1, 0, 2]] + 1e-4  # the same set, the first two swapped
    pairs = match_rois(got, want)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (1, 0), (2, 2)]
    assert max(d for _, _, d in pairs) == pytest.approx(1e-4, abs=1e-6)
    order = [j for _, j, _ in pairs]
    tied = np.array([1.0, 1.0, 0.5])
    assert rois_out_of_order(order, tied[[1, 0, 2]], tied, 1e-5) == 1  # exact tie: box decides
    near = np.array([0.9, 0.9 - 1e-7, 0.5])
    assert rois_out_of_order(order, near[[1, 0, 2]], near, 1e-5) == 0  # float noise
    apart = np.array([0.9, 0.6, 0.5])
    assert rois_out_of_order(order, apart[[1, 0, 2]], apart, 1e-5) == 1
    assert rois_out_of_order([0, 1, 2], tied, tied, 1e-5) == 0


def _tied_alanet(tmp_path) -> str:
    """A random-init ALA-Net whose RPN gives every anchor the same objectness (a uniform
    background does that to a trained model) and no box offset: every ROI score ties."""
    cfg = load_config(str(ALANET), SMALL)
    torch.manual_seed(0)
    model = BoneAgeTrainer.build_model(cfg)
    head = model.proposal_generator.rpn_head
    with torch.no_grad():
        head.objectness_logits.weight.zero_()
        head.objectness_logits.bias.fill_(2.0)
        head.anchor_deltas.weight.zero_()
        head.anchor_deltas.bias.zero_()
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("tied")
    return str(tmp_path / "tied.pth")


@pytest.mark.slow
def test_tied_scores_give_the_same_rois_in_the_same_order_when_exported(tmp_path):
    pytest.importorskip("onnxruntime")
    weights, out = _tied_alanet(tmp_path), tmp_path / "export"
    # the demo's RPN settings: 324 tied anchors for a 300-anchor pre-NMS cut, then NMS and a
    # 100-proposal cut, then ALA-Net's 17: every stage has to break the ties the same way
    argv = ["--config-file", str(ALANET), "--weights", weights, "--output-dir", str(out)]
    assert export_tool.main([*argv, "--check", "2", *SMALL]) == 0
    info = json.loads((out / "export.json").read_text())
    for fmt in ("torchscript", "onnx"):
        parity = info["parity"][fmt]
        assert parity["ok"] and parity["rois_out_of_order"] == 0, (fmt, parity)
        assert parity["roi_count_differs"] == 0 and parity["box_px"] <= 0.5, (fmt, parity)
        assert parity["score"] <= 1e-6  # every score is sigmoid(2.0), to float noise
    assert info["preprocessing"]["intensity"] == {
        "name": "percentiles",
        "dicom_window_index": 0,
        "low_pct": 0.5,
        "high_pct": 99.5,
    }
    assert info["preprocessing"]["resize_long_side"] == 128
