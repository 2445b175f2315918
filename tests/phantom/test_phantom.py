"""Tests of the synthetic phantom generator (boneage_d2.phantom) and its CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from boneage_d2.phantom import (
    DISTRACTOR_KINDS,
    SPLIT_FILES,
    PhantomConfig,
    draw_label,
    draw_subject,
    generate_phantom_dataset,
    maturity_months,
    render_phantom,
    sample_phantom,
    split_ids,
)
from boneage_d2.phantom.anatomy import PHYSES, maturity_cues, physis_state
from boneage_d2.schema import CANONICAL_17
from tests.cli import load_tool

make_phantom_main = load_tool("make_phantom").main

SMALL = PhantomConfig(image_long_side=160)
COUNTS = {"num_train": 4, "num_val": 3, "num_test": 3}


def _generate(root: Path, seed: int = 0, cfg: PhantomConfig = SMALL, workers: int = 1) -> dict:
    return generate_phantom_dataset(root, cfg, **COUNTS, seed=seed, workers=workers, progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phantom")
    _generate(root)
    return root


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# raw layout


def test_label_files_headers_and_encodings(dataset: Path):
    truth = json.loads((dataset / "phantom_truth.json").read_text())["images"]
    ids = split_ids(**COUNTS)

    header, rows = _read_csv(dataset / "boneage-training-dataset.csv")
    assert header == ["id", "boneage", "male"]
    assert [int(r[0]) for r in rows] == ids["train"]
    for i, age, male in rows:
        assert male in ("True", "False")
        assert age == str(int(age))  # integer months, as RSNA publishes
        assert int(age) == round(truth[i]["boneage"])
        assert (male == "True") == truth[i]["male"]

    header, rows = _read_csv(dataset / "Validation Dataset.csv")
    assert header == ["Image ID", "male", "Bone Age (months)"]  # sex before age
    assert [int(r[0]) for r in rows] == ids["val"]
    for i, male, age in rows:
        assert male in ("True", "False")
        assert int(age) == round(truth[i]["boneage"])

    header, rows = _read_csv(dataset / "boneage-test-dataset.csv")
    assert header == ["Case ID", "Sex"]
    assert [int(r[0]) for r in rows] == ids["test"]
    assert {r[1] for r in rows} <= {"M", "F"}

    import pandas as pd

    gt = pd.read_excel(dataset / "Bone age ground truth.xlsx")
    assert list(gt.columns) == ["Case ID", "Sex", "Ground truth bone age (months)"]
    assert gt["Case ID"].tolist() == ids["test"]
    for cid, sex, age in gt.itertuples(index=False):
        rec = truth[str(cid)]
        assert sex == ("M" if rec["male"] else "F")
        assert age == pytest.approx(round(rec["boneage"], 1), abs=1e-9)  # one decimal


def test_ids_distinct_and_images_written(dataset: Path):
    ids = split_ids(**COUNTS)
    all_ids = ids["train"] + ids["val"] + ids["test"]
    assert len(set(all_ids)) == len(all_ids) and min(all_ids) == 1000
    truth = json.loads((dataset / "phantom_truth.json").read_text())
    assert truth["num_keypoints"] == 17 and truth["keypoint_names"] == list(CANONICAL_17)
    assert list(truth["images"]) == [str(i) for i in all_ids]
    for split, lst in ids.items():
        for i in lst:
            rec = truth["images"][str(i)]
            assert rec["split"] == split
            png = dataset / SPLIT_FILES[split][1] / f"{i}.png"
            img = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            assert img.dtype == np.uint8 and img.ndim == 2
            assert img.shape == (rec["height"], rec["width"])
            assert max(img.shape) == SMALL.image_long_side
            mask = cv2.imread(str(dataset / "masks" / f"{i}_mask.png"), cv2.IMREAD_UNCHANGED)
            assert mask.shape == img.shape and set(np.unique(mask)) <= {0, 255}
            assert 0 < img.mean() < 255 and img.min() < img.max()


def test_keypoint_json_matches_truth(dataset: Path):
    truth = json.loads((dataset / "phantom_truth.json").read_text())["images"]
    for split, (_, _, kp_name) in SPLIT_FILES.items():
        coco = json.loads((dataset / kp_name).read_text())
        assert coco["categories"][0]["keypoints"] == list(CANONICAL_17)
        assert len(coco["images"]) == len(coco["annotations"]) == COUNTS[f"num_{split}"]
        for im, ann in zip(coco["images"], coco["annotations"]):
            rec = truth[str(im["id"])]
            assert im["file_name"] == f"{im['id']}.png"
            assert (im["width"], im["height"]) == (rec["width"], rec["height"])
            assert ann["image_id"] == im["id"] and ann["category_id"] == 1
            assert ann["num_keypoints"] == 17 and len(ann["keypoints"]) == 51
            primary = rec["hands"][0]
            assert primary["primary"] and ann["bbox"] == primary["bbox"]
            kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
            assert (kps[:, 2] == 2).all()
            # json = COCO convention = truth (continuous) - 0.5
            np.testing.assert_allclose(kps[:, :2] + 0.5, primary["keypoints"], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# determinism


def test_same_seed_identical_bytes(tmp_path: Path, dataset: Path):
    _generate(tmp_path / "b")
    a, b = _files(dataset), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_images_independent_of_order():
    """Each image depends only on (seed, id): rendering order (i.e. workers) cannot matter."""
    forward = [sample_phantom(SMALL, 4, i).image for i in range(3)]
    backward = [sample_phantom(SMALL, 4, i).image for i in reversed(range(3))][::-1]
    assert all(np.array_equal(f, b) for f, b in zip(forward, backward))


@pytest.mark.slow
def test_workers_give_identical_bytes(tmp_path: Path, dataset: Path):
    _generate(tmp_path / "w", workers=2)  # process pool start-up dominates (~5 s)
    a, b = _files(dataset), _files(tmp_path / "w")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_different_seed_differs(tmp_path: Path, dataset: Path):
    _generate(tmp_path / "c", seed=1)
    a, c = _files(dataset), _files(tmp_path / "c")
    png = [k for k in a if k.endswith(".png") and not k.startswith("masks")]
    assert all(a[k] != c[k] for k in png)


# ---------------------------------------------------------------------------------------------
# geometry: keypoints, masks, boxes


def _primary_component(mask: np.ndarray, box: list[float]) -> np.ndarray:
    n, labels = cv2.connectedComponents((mask > 127).astype(np.uint8))
    x, y, w, h = (int(v) for v in box)
    ids, counts = np.unique(labels[y : y + h, x : x + w], return_counts=True)
    keep = ids[ids > 0][np.argmax(counts[ids > 0])]
    return labels == keep


def test_keypoints_inside_image_and_mask_and_box():
    cfg = PhantomConfig(image_long_side=192, distractor_scale=2.0)
    for image_id in range(40):
        s = sample_phantom(cfg, 7, image_id)
        kp = s.keypoints
        assert kp.shape == (17, 2)
        assert (kp > 0).all() and (kp[:, 0] < s.width).all() and (kp[:, 1] < s.height).all()
        cols, rows = kp[:, 0].astype(int), kp[:, 1].astype(int)  # continuous -> pixel index
        assert (s.mask[rows, cols] == 255).all(), f"keypoint outside the mask, image {image_id}"
        x, y, w, h = s.hands[0]["bbox"]
        assert (kp[:, 0] >= x).all() and (kp[:, 0] <= x + w).all()
        assert (kp[:, 1] >= y).all() and (kp[:, 1] <= y + h).all()


def test_mask_covers_hand_boxes():
    cfg = PhantomConfig(image_long_side=192, distractor_probs={"second_hand": 1.0})
    seen_second = 0
    for image_id in range(12):
        s = sample_phantom(cfg, 3, image_id)
        primary = _primary_component(s.mask, s.hands[0]["bbox"])
        ys, xs = np.nonzero(primary)
        box = [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]
        assert box == s.hands[0]["bbox"], "primary box is the box of its mask component"
        for hand in s.hands[1:]:
            seen_second += 1
            assert hand["primary"] is False and hand["keypoints"] == []
            x, y, w, h = (int(v) for v in hand["bbox"])
            assert (s.mask[y : y + h, x : x + w] == 255).any()
            assert not primary[y : y + h, x : x + w].all()
        assert ("second_hand" in s.distractors) == (len(s.hands) == 2)
        # every hand is one connected piece of the mask, apart from the others
        assert cv2.connectedComponents(s.mask, connectivity=8)[0] - 1 == len(s.hands)
    assert seen_second >= 3


# ---------------------------------------------------------------------------------------------
# age, sex, labels


def test_girls_mature_earlier_than_boys():
    for age in (6.0, 24.0, 60.0, 120.0, 170.0):
        girl, boy = maturity_months(age, male=False), maturity_months(age, male=True)
        assert boy == age and 1.1 * age <= girl <= 1.15 * age
        assert maturity_cues(girl)["carpal_area_mm2"] >= maturity_cues(boy)["carpal_area_mm2"]
    assert maturity_months(220.0, male=False) == 228.0  # clipped
    assert maturity_months(0.0, male=False) == 0.0


def test_maturity_cues_are_monotone():
    ms = np.arange(0.0, 229.0, 6.0)
    cues = [maturity_cues(m) for m in ms]
    carpals = [c["carpal_count"] for c in cues]
    area = [c["carpal_area_mm2"] for c in cues]
    fused = [c["fused_count"] for c in cues]
    assert carpals[0] == 0 and carpals[-1] == 8 and np.all(np.diff(carpals) >= 0)
    assert np.all(np.diff(area) >= 0) and np.all(np.diff(fused) >= 0)
    assert cues[0]["epiphysis_count"] == 0 and fused[-1] == len(PHYSES)
    for spec in PHYSES:  # every growth plate narrows after it appears, then closes
        gaps = [physis_state(spec, m).gap_mm for m in np.arange(spec.appear_months, 229.0, 3.0)]
        assert np.all(np.diff(gaps) <= 1e-9) and gaps[-1] <= 0.0
        widths = [physis_state(spec, m).width_ratio for m in (spec.appear_months + 12, 150.0)]
        assert widths[1] > widths[0]


def test_label_noise_statistics():
    cfg = PhantomConfig(label_noise_months=3.0)
    rng = np.random.default_rng(0)
    labels = np.array([draw_label(cfg, rng, 120.0) for _ in range(4000)])
    assert abs(labels.mean() - 120.0) < 0.2 and abs(labels.std() - 3.0) < 0.15
    edge = np.array([draw_label(cfg, rng, 0.5) for _ in range(500)])
    assert edge.min() >= 0.0  # clipped to the age range
    assert draw_label(PhantomConfig(label_noise_months=0.0), rng, 42.0) == 42.0
    samples = [sample_phantom(SMALL, 5, i) for i in range(60)]
    diffs = np.array([s.boneage - s.appearance_age for s in samples])
    assert 1.5 < diffs.std() < 4.5 and abs(diffs.mean()) < 1.5


def test_sex_ratio_and_age_distribution():
    rng = np.random.default_rng(2)
    subjects = [draw_subject(PhantomConfig(), rng) for _ in range(3000)]
    male = np.mean([m for m, _ in subjects])
    ages = np.array([a for _, a in subjects])
    assert abs(male - 0.54) < 0.03
    assert abs(ages.mean() - 127) < 3 and abs(ages.std() - 42) < 3
    assert ages.min() >= 0 and ages.max() <= 228
    uni = np.array(
        [draw_subject(PhantomConfig(age_distribution="uniform"), rng)[1] for _ in range(2000)]
    )
    assert uni.min() >= 0 and uni.max() <= 228 and abs(uni.mean() - 114) < 6


# ---------------------------------------------------------------------------------------------
# distractors


def test_distractors_off_records_none():
    cfg = PhantomConfig(image_long_side=128, distractors=False)
    cluttered = PhantomConfig(image_long_side=128, distractor_scale=3.0)
    for i in range(25):
        s = sample_phantom(cfg, 0, i)
        assert s.distractors == [] and len(s.hands) == 1
        # same seed: same child, hand and pose whether distractors are on or off
        c = sample_phantom(cluttered, 0, i)
        assert (c.male, c.boneage) == (s.male, s.boneage)
        np.testing.assert_array_equal(c.keypoints, s.keypoints)


def test_distractors_on_are_recorded():
    cfg = PhantomConfig(image_long_side=192, distractor_probs={k: 1.0 for k in DISTRACTOR_KINDS})
    seen: set[str] = set()
    for i in range(12):
        s = sample_phantom(cfg, 0, i)
        assert {"noise", "exposure"} <= set(s.distractors)
        seen |= set(s.distractors)
    assert seen == set(DISTRACTOR_KINDS)
    assert sample_phantom(PhantomConfig(distractor_scale=0.0), 0, 1).distractors == []


def test_config_validation():
    with pytest.raises(ValueError, match="distractor_probs"):
        PhantomConfig(distractor_probs={"ghost": 0.5}).validate()
    with pytest.raises(ValueError, match="hand_extent_range"):
        PhantomConfig(hand_extent_range=(0.9, 0.5)).validate()
    with pytest.raises(ValueError, match="num_train"):
        generate_phantom_dataset("/nonexistent/never", SMALL, -1, 0, 0, seed=0, progress=False)


# ---------------------------------------------------------------------------------------------
# age must be read from the bones, not from the hand's size or outline


@pytest.mark.slow
def test_hand_size_does_not_reveal_age_but_bones_do():
    cfg = PhantomConfig(image_long_side=128)
    rows = []
    for i in range(200):
        s = sample_phantom(cfg, 11, i)
        x, y, w, h = s.hands[0]["bbox"]
        rows.append(
            (
                s.appearance_age,
                np.count_nonzero(s.mask) / s.mask.size,  # hand-mask area fraction
                w * h / s.mask.size,  # primary hand box area fraction
                max(w, h) / max(s.mask.shape),  # box long side fraction
                s.cues["carpal_area_mm2"],
                s.cues["open_gap_mean_mm"],
            )
        )
    a = np.array(rows)
    for j in (1, 2, 3):
        assert abs(np.corrcoef(a[:, 0], a[:, j])[0, 1]) < 0.3
    assert np.corrcoef(a[:, 0], a[:, 4])[0, 1] > 0.8  # carpal ossification grows with age
    assert np.corrcoef(a[:, 0], a[:, 5])[0, 1] < -0.8  # growth plates narrow with age


def test_growth_plate_visible_at_demo_resolution():
    """At a 256-px long side and the smallest zoom, a young child's widest gap is >= 2 px."""
    cfg = PhantomConfig(image_long_side=256, hand_extent_range=(0.55, 0.55), distractors=False)
    for i in range(5):
        s = render_phantom(cfg, np.random.default_rng(i), 40.0 + 8.0 * i, True)
        assert s.cues["open_gap_max_mm"] * s.px_per_mm >= 2.0
        assert s.cues["carpal_count"] >= 2


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_writes_dataset_and_summary(tmp_path: Path, capsys):
    out = tmp_path / "cli"
    rc = make_phantom_main(
        [
            "--output-dir", str(out), "--num-train", "2", "--num-val", "1", "--num-test", "1",
            "--seed", "3", "--image-long-side", "96", "--no-distractors", "--no-progress",
        ]
    )  # fmt: skip
    assert rc == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("phantom: wrote 4 images") and "\n" not in line
    truth = json.loads((out / "phantom_truth.json").read_text())
    assert truth["seed"] == 3 and all(r["distractors"] == [] for r in truth["images"].values())


@pytest.mark.parametrize(
    "bad",
    [
        ["--num-train", "-1"],
        ["--num-train", "x"],
        ["--distractor-prob", "1.5"],
        ["--image-long-side", "10"],
        ["--workers", "0"],
    ],
)
def test_cli_rejects_bad_arguments(tmp_path: Path, capsys, bad: list[str]):
    args = {"--num-train": "1", "--num-val": "0", "--num-test": "0", "--seed": "0"}
    argv = ["--output-dir", str(tmp_path / "x")]
    for k, v in args.items():
        if k not in bad:
            argv += [k, v]
    with pytest.raises(SystemExit) as e:
        make_phantom_main(argv + bad)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err
