"""Hand-drawn ROI boxes from the json to the model input: kept with their own size and moved with
the image by every augmentation (resize, flip, scale, rotation, crop)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from detectron2.data import transforms as T

from boneage_d2.convert.rsna import convert_split
from boneage_d2.data import BoneAgeDatasetMapper
from boneage_d2.data.catalog import load_boneage_json
from boneage_d2.data.transforms import LongSideResize
from tests.convert.test_roi_files import IMAGE, hand_objects, write_voc
from tests.convert.test_rsna_convert import write_labels, write_png

H, W = 200, 160
# XYWH boxes of three shapes, far enough apart to stay apart under the rotations below.
BOXES = {3: [20.0, 30.0, 30.0, 12.0], 7: [90.0, 40.0, 24.0, 40.0], 12: [40.0, 120.0, 50.0, 30.0]}


def drawn_record(tmp_path) -> dict:
    """A film whose drawn ROI boxes are bright filled rectangles on a dark background."""
    img = np.full((H, W), 10, np.uint8)
    for x, y, w, h in BOXES.values():
        img[int(y) : int(y + h), int(x) : int(x + w)] = 250
    cv2.imwrite(str(tmp_path / "d.png"), img)
    rois = [
        {"bbox": b, "bbox_mode": 1, "category_id": 0, "landmark": k, "roi_source": "drawn"}
        for k, b in BOXES.items()
    ]
    return {
        "file_name": str(tmp_path / "d.png"),
        "image_id": 1,
        "height": H,
        "width": W,
        "boneage": 90.0,
        "male": False,
        "has_keypoints": False,
        "roi_size": 20.0,
        "annotations": [],
        "roi_annotations": rois,
    }


def bright_boxes(image: np.ndarray) -> list[list[float]]:
    """XYXY bounds of each bright region of a mapped image."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((image > 128).astype(np.uint8))
    return [[s[0], s[1], s[0] + s[2], s[1] + s[3]] for s in stats[1:n]]


@pytest.mark.parametrize(
    "augs",
    [
        [LongSideResize(100)],
        [LongSideResize(240), T.RandomFlip(prob=1.0)],
        [LongSideResize(150, (0.8, 1.2)), T.RandomRotation([20, 20], expand=False)],
        [LongSideResize(200), T.RandomRotation([-15, -15], expand=False), T.RandomFlip(prob=1.0)],
    ],
    ids=["resize", "flip", "scale+rotate", "rotate+flip"],
)
def test_drawn_boxes_move_with_the_image_and_keep_their_size(tmp_path, augs):
    out = BoneAgeDatasetMapper(is_train=True, augmentations=augs)(drawn_record(tmp_path))
    rois = out["roi_instances"]
    assert rois.gt_landmarks.tolist() == [3, 7, 12] and rois.gt_classes.tolist() == [0, 0, 0]
    # Each box is the bounds of its bright rectangle in the mapped image: under a rotation the
    # bounding box of the turned rectangle (its four corners' bounds).
    regions = bright_boxes(out["image"][0].numpy())
    assert len(regions) == 3
    for box in rois.gt_boxes.tensor.tolist():
        nearest = min(regions, key=lambda r: sum(abs(a - b) for a, b in zip(r, box)))
        assert box == pytest.approx(nearest, abs=1.5)


def test_a_crop_clips_drawn_boxes_and_drops_those_it_removes(tmp_path):
    crop = T.CropTransform(0, 0, 100, 110)  # x0, y0, w, h: box 7 cut at x = 100, box 12 gone
    out = BoneAgeDatasetMapper(is_train=True, augmentations=[crop])(drawn_record(tmp_path))
    rois = out["roi_instances"]
    assert rois.gt_landmarks.tolist() == [3, 7] and rois.image_size == (110, 100)
    assert rois.gt_boxes.tensor.tolist() == [[20, 30, 50, 42], [90, 40, 100, 80]]


def test_test_mode_drops_the_boxes(tmp_path):
    out = BoneAgeDatasetMapper(is_train=False, augmentations=[LongSideResize(100)])(
        drawn_record(tmp_path)
    )
    assert "roi_annotations" not in out and "roi_instances" not in out


def test_converted_drawn_boxes_reach_the_model_input_at_their_size(tmp_path):
    labels = write_labels(tmp_path / "labels.csv", ["id", "boneage", "male"], [["5", "60", "1"]])
    write_png(tmp_path / "imgs" / "5.png", *IMAGE)
    write_voc(tmp_path / "rois", "5", hand_objects())
    convert_split(labels, tmp_path / "imgs", tmp_path / "t.json", rois=tmp_path / "rois")
    [record] = load_boneage_json(tmp_path / "t.json")
    assert [r["roi_source"] for r in record["roi_annotations"]] == ["drawn"] * 17
    assert record["annotations"] == [] and record["has_keypoints"] is False
    out = BoneAgeDatasetMapper(is_train=True, augmentations=[LongSideResize(250)])(record)
    rois = out["roi_instances"]
    assert rois.gt_landmarks.tolist() == list(range(17))
    sizes = (rois.gt_boxes.tensor[:, 2:] - rois.gt_boxes.tensor[:, :2]).numpy()
    want = [[b["bbox"][2] / 2, b["bbox"][3] / 2] for b in record["roi_annotations"]]
    assert sizes == pytest.approx(np.array(want), abs=1e-3)  # 500 -> 250 px: half the json's
