"""Pseudo ROI keypoints: an ALA-Net's ROI boxes become keypoints the converter reads back."""

import json

import numpy as np
import pytest
import torch
from detectron2.structures import Boxes, Instances

from boneage_d2.convert import read_keypoints
from boneage_d2.engine.pseudo_labels import pseudo_keypoint_json


def _output(boxes, scores, size=(100, 80)):
    inst = Instances(size)
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    inst.scores = torch.tensor(scores)
    return {"instances": inst, "boneage": torch.tensor(100.0)}


def test_roi_centres_become_keypoints_in_coco_convention(tmp_path):
    outputs = [
        (
            "films/1377.png",
            _output([[10, 10, 20, 20], [40, 50, 60, 70], [0, 0, 4, 4]], [0.9, 0.6, 0.2]),
        ),
        ("films/1417.png", _output([[5, 5, 15, 25]], [0.8])),
    ]
    data = pseudo_keypoint_json(outputs, num_rois=3, min_score=0.5)
    path = tmp_path / "pseudo.json"
    path.write_text(json.dumps(data))
    kp = read_keypoints(path)
    assert kp.num_keypoints == 3 and set(kp.hands) == {"1377", "1417"}
    first = kp.hands["1377"].keypoints
    # centre (15, 15) in continuous coordinates = pixel index 14.5; the 0.2-score ROI unlabelled
    assert np.allclose(first[0], [14.5, 14.5, 2]) and np.allclose(first[1], [49.5, 59.5, 2])
    assert first[2, 2] == 0
    second = kp.hands["1417"].keypoints
    assert np.allclose(second[0], [9.5, 14.5, 2]) and (second[1:, 2] == 0).all()
    assert data["images"][0] == {"id": 1, "file_name": "1377.png", "width": 80, "height": 100}


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--config-file", "nope.yaml"], "--config-file nope.yaml: file not found"),
        (["--batch-size", "0"], "expected a whole number >= 1"),
    ],
)
def test_cli_names_bad_arguments(tmp_path, extra, message, capsys):
    from tests.cli import load_tool

    (tmp_path / "w.pth").write_bytes(b"")
    argv = ["--config-file", str(tmp_path / "w.pth"), "--weights", str(tmp_path / "w.pth")]
    argv += ["--labels", "l.csv", "--images", str(tmp_path), "--output", "o.json", *extra]
    with pytest.raises(SystemExit):
        load_tool("pseudo_rois").main(argv)
    assert message in capsys.readouterr().err
