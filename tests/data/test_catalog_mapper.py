"""Dataset registration (full split + task views) and the mapper's alignment under augmentation."""

import json

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T

from boneage_d2.data import BoneAgeDatasetMapper, register_boneage_split
from boneage_d2.data.catalog import load_boneage_json, prepare_task_view
from boneage_d2.data.transforms import LongSideResize, linear_scale
from tests.fixtures import write_tiny_dataset


def test_loader_keeps_labels_and_separates_rois(tmp_path):
    path = write_tiny_dataset(tmp_path, num_images=3)
    records = load_boneage_json(path)
    raw = json.loads(path.read_text())
    r0, img0 = records[0], raw["images"][0]
    assert r0["boneage"] == pytest.approx(img0["boneage"]) and r0["male"] == img0["male"]
    assert r0["file_name"] == str(tmp_path / img0["file_name"])
    assert [a["category_id"] for a in r0["annotations"]] == [0]  # one hand, no ROI boxes
    assert [r["landmark"] for r in r0["roi_annotations"]] == list(range(17))
    hand_json = next(a for a in raw["annotations"] if a["category_id"] == 1)
    # json = COCO pixel indices; memory = Detectron2 continuous coordinates (+0.5).
    assert r0["annotations"][0]["keypoints"][:2] == [
        hand_json["keypoints"][0] + 0.5,
        hand_json["keypoints"][1] + 0.5,
    ]


def test_registration_gives_task_views_with_single_category_jsons(tmp_path):
    path = write_tiny_dataset(tmp_path, num_images=2)
    register_boneage_split("viewtest_train", path)
    assert len(DatasetCatalog.get("viewtest_train")) == 2
    assert MetadataCatalog.get("viewtest_train").keypoint_flip_map == []
    assert len(MetadataCatalog.get("viewtest_train").keypoint_names) == 17
    rois = DatasetCatalog.get("viewtest_train_roi")
    assert len(rois[0]["annotations"]) == 17 and "roi_annotations" not in rois[0]
    hands = DatasetCatalog.get("viewtest_train_hand")
    assert len(hands[0]["annotations"]) == 1
    for view, cat in (("hand", 1), ("roi", 2)):
        meta = MetadataCatalog.get(f"viewtest_train_{view}")
        view_json = json.loads(open(meta.json_file).read())
        assert [c["id"] for c in view_json["categories"]] == [cat]
        assert {a["category_id"] for a in view_json["annotations"]} == {cat}
        assert meta.thing_dataset_id_to_contiguous_id == {cat: 0}


def test_task_view_follows_regenerated_data(tmp_path):
    path = write_tiny_dataset(tmp_path, num_images=2)
    view = prepare_task_view(path, "roi")
    assert len(json.loads(view.read_text())["images"]) == 2
    write_tiny_dataset(tmp_path, num_images=3)  # data regenerated under the same name
    assert len(json.loads(prepare_task_view(path, "roi").read_text())["images"]) == 3


def _marked_record(tmp_path, h=120, w=90):
    """An image with bright dots at known keypoints and a hand mask covering them."""
    img = np.full((h, w), 20, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (45, 65), (30, 45), 0, 0, 360, 1, -1)
    img[mask > 0] = 90
    pts = [(30.5, 40.5), (55.5, 70.5), (40.5, 95.5)]  # memory (continuous) coordinates
    for x, y in pts:
        cv2.circle(img, (int(x), int(y)), 2, 255, -1)
    cv2.imwrite(str(tmp_path / "m.png"), img)
    rle = mask_util.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode()
    ys, xs = np.nonzero(mask)
    kps = [v for x, y in pts for v in (x, y, 2)]
    return {
        "file_name": str(tmp_path / "m.png"),
        "image_id": 1,
        "height": h,
        "width": w,
        "boneage": 100.0,
        "male": True,
        "has_keypoints": True,
        "roi_size": 16.0,
        "annotations": [
            {
                "bbox": [
                    float(xs.min()),
                    float(ys.min()),
                    float(xs.max() - xs.min() + 1),
                    float(ys.max() - ys.min() + 1),
                ],
                "bbox_mode": 1,
                "category_id": 0,
                "iscrowd": 0,
                "segmentation": rle,
                "keypoints": kps,
            }
        ],
        "roi_annotations": [],
    }


@pytest.mark.parametrize(
    "augs",
    [
        [LongSideResize(240)],
        [LongSideResize(180), T.RandomFlip(prob=1.0)],
        [LongSideResize(150, (0.8, 1.2)), T.RandomRotation([20, 20], expand=False)],
        [LongSideResize(200), T.RandomRotation([-15, -15], expand=False), T.RandomFlip(prob=1.0)],
    ],
    ids=["resize", "flip", "scale+rotate", "rotate+flip"],
)
def test_mapper_keeps_image_mask_keypoints_and_rois_aligned(tmp_path, augs):
    record = _marked_record(tmp_path)
    mapper = BoneAgeDatasetMapper(is_train=True, augmentations=augs)
    out = mapper(record)
    image = out["image"][0].numpy()
    inst = out["instances"]
    kps = inst.gt_keypoints.tensor[0].numpy()
    mask = inst.gt_masks.tensor[0].numpy()
    assert out["boneage"] == 100.0 and out["male"] is True
    for x, y, v in kps:
        assert v > 0
        xi, yi = int(x), int(y)
        assert image[yi - 1 : yi + 2, xi - 1 : xi + 2].max() > 200, "keypoint left its dot"
        assert mask[yi, xi], "keypoint left the hand mask"
    # The hand box is recomputed from the transformed mask (a rotated box would grow).
    ys, xs = np.nonzero(mask)
    assert inst.gt_boxes.tensor[0].tolist() == pytest.approx(
        [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], abs=1.0
    )
    # ROI boxes: centred on the transformed keypoints, side scaled with the image.
    rois = out["roi_instances"]
    assert rois.gt_landmarks.tolist() == [0, 1, 2]
    centres = rois.gt_boxes.get_centers().numpy()
    assert centres == pytest.approx(kps[:, :2], abs=0.01)
    scale = out["image"].shape[1] / 120  # long side after / before (no crop here)
    sides = (rois.gt_boxes.tensor[:, 2] - rois.gt_boxes.tensor[:, 0]).numpy()
    assert sides == pytest.approx(16.0 * scale, rel=0.02)


def test_mapper_test_mode_and_linear_scale(tmp_path):
    record = _marked_record(tmp_path)
    out = BoneAgeDatasetMapper(is_train=False, augmentations=[LongSideResize(60)])(record)
    assert out["image"].shape[1:] == (60, 45)
    assert "instances" not in out and out["boneage"] == 100.0
    tfm = T.AugmentationList([LongSideResize(60)])(T.AugInput(np.zeros((120, 90, 3), np.uint8)))
    assert linear_scale(tfm) == pytest.approx(0.5)


def test_random_scale_really_varies_the_size():
    aug = LongSideResize(512, (0.8, 1.2))
    sizes = {aug.get_transform(np.zeros((1022, 757, 3), np.uint8)).new_h for _ in range(20)}
    assert len(sizes) > 5 and min(sizes) >= 409 and max(sizes) <= 615
