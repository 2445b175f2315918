"""Phantom -> converter -> catalog -> mapper, end to end on the real CLIs (in-process)."""

import importlib.util
import json

import cv2
import numpy as np
import pytest

from boneage_d2.data import BoneAgeDatasetMapper
from boneage_d2.data.catalog import load_boneage_json
from boneage_d2.data.transforms import LongSideResize
from tests.cli import load_tool
from tests.fixtures import REPO

convert_rsna = load_tool("convert_rsna")
make_phantom = load_tool("make_phantom")
visualize_data = load_tool("visualize_data")


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    argv = [
        "--output-dir",
        str(root / "raw"),
        "--num-train",
        "6",
        "--num-val",
        "3",
        "--num-test",
        "2",
        "--seed",
        "7",
        "--image-long-side",
        "256",
        "--workers",
        "1",
    ]
    assert make_phantom.main(argv) == 0
    assert (
        convert_rsna.main(
            ["--rsna-root", str(root / "raw"), "--output-dir", str(root / "coco"), "--workers", "1"]
        )
        == 0
    )
    return root


def test_converted_keypoints_labels_and_boxes_match_the_generator(phantom):
    truth = json.loads((phantom / "raw/phantom_truth.json").read_text())["images"]
    for split in ("train", "val", "test"):
        for r in load_boneage_json(phantom / f"coco/{split}.json"):
            t = truth[str(r["image_id"])]
            assert r["male"] == t["male"]
            assert r["boneage"] == pytest.approx(t["boneage"], abs=0.51)  # files round to <=1 mo
            primary = next(h for h in t["hands"] if h["primary"])
            annotated = [a for a in r["annotations"] if np.asarray(a["keypoints"])[2::3].any()]
            assert len(annotated) == 1 and len(r["annotations"]) == len(t["hands"])
            kps = np.asarray(annotated[0]["keypoints"]).reshape(-1, 3)
            # Both in memory (continuous) coordinates: exact up to float printing.
            assert kps[:, :2] == pytest.approx(np.asarray(primary["keypoints"]), abs=1e-3)
            assert annotated[0]["bbox"] == pytest.approx(primary["bbox"], abs=1.0)
            assert [a["landmark"] for a in r["roi_annotations"]] == list(range(17))
            centres = [
                (b["bbox"][0] + b["bbox"][2] / 2, b["bbox"][1] + b["bbox"][3] / 2)
                for b in r["roi_annotations"]
            ]
            inside = [b["bbox"][2] == pytest.approx(r["roi_size"]) for b in r["roi_annotations"]]
            for (cx, cy), (kx, ky), full in zip(centres, primary["keypoints"], inside):
                if full:  # unclipped boxes are centred on their keypoint
                    assert (cx, cy) == pytest.approx((kx, ky), abs=1e-3)


def test_mapper_runs_on_converted_phantom(phantom):
    records = load_boneage_json(phantom / "coco/train.json")
    out = BoneAgeDatasetMapper(is_train=True, augmentations=[LongSideResize(128)])(records[0])
    assert out["image"].shape[0] == 3 and max(out["image"].shape[1:]) == 128
    assert len(out["roi_instances"]) == 17 and out["instances"].has("gt_masks")


def test_visualize_data_draws_overlays(phantom, tmp_path):
    js = phantom / "coco/val.json"
    assert visualize_data.main(["--json", str(js), "--output-dir", str(tmp_path), "-n", "2"]) == 0
    records = load_boneage_json(js)[:2]
    for r in records:
        drawn = cv2.imread(str(tmp_path / f"{r['image_id']}.png"))
        plain = cv2.imread(r["file_name"])
        assert drawn.shape == plain.shape and np.abs(drawn.astype(int) - plain).mean() > 2


def _compare_datasets():
    path = REPO / "tools/compare_datasets.py"
    spec = importlib.util.spec_from_file_location("compare_datasets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_datasets_reports_hand_and_background_statistics(phantom, capsys):
    compare = _compare_datasets()
    stats = compare.image_stats(phantom / "coco/train.json", num_images=4)
    assert stats.shape == (4, len(compare.COLUMNS))
    long_side, share, hand_mean, background, p95, _ = stats.T
    assert (long_side == 256).all() and ((0 < share) & (share < 1)).all()
    assert (hand_mean > background).all() and (p95 >= hand_mean).all()
    assert compare.main([str(phantom / "coco/val.json"), "--num-images", "2"]) == 0
    assert "| 2 | 256 [256, 256] |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.json"], "missing.json: converted dataset json not found"),
        (["x.json", "--num-images", "0"], "expected a whole number >= 1, got 0"),
    ],
)
def test_compare_datasets_bad_input_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _compare_datasets().main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_compare_datasets_without_masks_is_one_line(phantom, tmp_path, capsys):
    data = json.loads((phantom / "coco/val.json").read_text())
    for ann in data["annotations"]:
        ann.pop("segmentation", None)
    for image in data["images"]:
        image["file_name"] = str((phantom / "coco" / image["file_name"]).resolve())
    no_masks = tmp_path / "no_masks.json"
    no_masks.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as exit_info:
        _compare_datasets().main([str(no_masks)])
    assert exit_info.value.code == 2
    assert "no_masks.json: no image with a hand mask" in capsys.readouterr().err
