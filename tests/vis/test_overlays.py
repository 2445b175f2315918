"""Prediction overlays: every hand mask visible on a dark film, each hand its own colour."""

import numpy as np
import torch
from detectron2.structures import Boxes, Instances

from boneage_d2.vis.overlays import draw_prediction


def _hands_output(h: int, w: int) -> dict:
    masks = torch.zeros((2, h, w), dtype=torch.bool)
    masks[0, 10:50, 5:30] = True
    masks[1, 20:60, 40:70] = True
    inst = Instances((h, w))
    inst.pred_masks = masks
    inst.pred_boxes = Boxes(torch.tensor([[5.0, 10.0, 30.0, 50.0], [40.0, 20.0, 70.0, 60.0]]))
    inst.scores = torch.tensor([0.99, 0.7])
    inst.boneage = torch.tensor([120.0, 118.0])
    return {"instances": inst, "boneage": torch.tensor(120.0), "flags": []}


def test_every_hand_mask_is_a_bright_distinct_colour_on_a_dark_film():
    gray = np.full((80, 80), 12, np.uint8)
    out = _hands_output(80, 80)
    for _ in range(5):  # the colours are fixed, not drawn at random per call
        rgb = draw_prediction(gray, out, male=True).astype(int)
        fills = []
        for k in range(2):
            inside = rgb[out["instances"].pred_masks[k].numpy()]
            inner = inside[len(inside) // 3 : -len(inside) // 3]  # away from outline and labels
            assert (inner.max(1) - gray[0, 0]).mean() > 60, f"hand {k} fill invisible"
            fills.append(np.median(inner, axis=0))
        assert np.abs(fills[0] - fills[1]).max() > 60
