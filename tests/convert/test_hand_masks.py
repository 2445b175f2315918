"""Hand-mask derivation (paper A style), fragments, markers and second hands, mask files, and
checks on the real RSNA sample."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from boneage_d2.convert.converter import convert_split
from boneage_d2.convert.hand_masks import (
    derive_hand_mask,
    derive_masks,
    mask_path_for,
    read_mask,
    write_mask,
)
from boneage_d2.convert.image_records import hands_from_mask
from boneage_d2.convert.keypoint_files import HandKeypoints
from boneage_d2.io.radiograph import ImageReadError
from tests.fixtures import RSNA_SAMPLE

FINGERS = [(165, -25), (205, -8), (245, 0), (285, 8), (320, 35)]  # (base x, angle in degrees)


def synthetic_radiograph(
    seed: int = 0, h: int = 640, w: int = 480
) -> tuple[np.ndarray, np.ndarray]:
    """A dark field with a hand (soft tissue, phalanges, metacarpals, carpals, forearm bones),
    an "L" tag in a corner and a collimator frame. Returns (uint8 image, boolean hand truth)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 45, np.float32)
    truth = np.zeros((h, w), np.uint8)
    cv2.rectangle(truth, (180, 430), (300, h - 1), 255, -1)
    cv2.ellipse(truth, (240, 380), (95, 90), 0, 0, 360, 255, -1)
    bones = np.zeros_like(truth)
    for i, (x, ang) in enumerate(FINGERS):
        length = 150 if i in (1, 2, 3) else 120
        s, c = np.sin(np.radians(ang)), np.cos(np.radians(ang))
        centre = (x + s * length / 2, 330 - c * length / 2)
        cv2.fillPoly(truth, [cv2.boxPoints((centre, (26, length), ang)).astype(np.int32)], 255)
        cv2.circle(truth, (int(x + s * length), int(330 - c * length)), 13, 255, -1)
        for k in range(3):
            centre = (x + s * (20 + 40 * k), 330 - c * (20 + 40 * k))
            cv2.fillPoly(bones, [cv2.boxPoints((centre, (12, 32), ang)).astype(np.int32)], 255)
        cv2.line(bones, (int(x + s * 2), 322), (int(200 + (x - 165) * 0.45 + 15), 425), 255, 11)
    cv2.rectangle(bones, (195, 440), (225, h - 1), 255, -1)
    cv2.rectangle(bones, (255, 450), (280, h - 1), 255, -1)
    for cx in range(200, 290, 25):
        cv2.circle(bones, (cx, 400), 10, 255, -1)
    img[truth > 0] = 110
    img[bones > 0] = 170
    cv2.rectangle(img, (30, 40), (95, 100), 215, -1)  # tag with a dark "L"
    cv2.rectangle(img, (50, 55), (58, 88), 60, -1)
    cv2.rectangle(img, (50, 80), (78, 88), 60, -1)
    cv2.rectangle(img, (12, 12), (w - 13, h - 13), 200, 3)  # collimator frame
    img = cv2.GaussianBlur(img, (0, 0), 1.5) + rng.normal(0, 3, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8), truth > 0


def test_derive_hand_mask_covers_hand_and_excludes_tag_and_frame():
    img, truth = synthetic_radiograph()
    mask = derive_hand_mask(img)
    assert mask.dtype == bool and mask.shape == img.shape
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.85, iou
    assert mask[40:100, 30:95].mean() < 0.05  # the tag
    assert mask[8:18, :].mean() < 0.05 and mask[:, 8:18].mean() < 0.05  # the frame


def test_derive_hand_mask_accepts_16bit_colour_and_other_sizes():
    img, truth = synthetic_radiograph(seed=1)
    ref = derive_hand_mask(img)
    as16 = derive_hand_mask(img.astype(np.uint16) * 257)
    assert as16.shape == img.shape
    assert (as16 & truth).sum() / (as16 | truth).sum() > 0.85  # windowed, so not identical
    colour = derive_hand_mask(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    assert (colour == ref).all()
    big = cv2.resize(img, (960, 1280), interpolation=cv2.INTER_LINEAR)
    big_mask = derive_hand_mask(big)
    assert big_mask.shape == (1280, 960)
    big_truth = cv2.resize(truth.astype(np.uint8), (960, 1280), interpolation=cv2.INTER_NEAREST)
    assert (big_mask & (big_truth > 0)).sum() / (big_mask | (big_truth > 0)).sum() > 0.85


def test_derive_hand_mask_blank_image_gives_empty_mask():
    assert not derive_hand_mask(np.full((100, 80), 50, np.uint8)).any()
    with pytest.raises(ValueError):
        derive_hand_mask(np.zeros((0, 5), np.uint8))


def test_read_mask_threshold_and_roundtrip(tmp_path):
    raw = np.array([[0, 127, 128, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), raw)
    assert read_mask(tmp_path / "m.png").tolist() == [[False, False, True, True]]
    mask = np.zeros((20, 30), bool)
    mask[5:10, 3:25] = True
    write_mask(tmp_path / "out" / "1_mask.png", mask)
    assert (read_mask(tmp_path / "out" / "1_mask.png") == mask).all()
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_read_mask_errors_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="missing_mask.png"):
        read_mask(tmp_path / "missing_mask.png")
    (tmp_path / "junk_mask.png").write_bytes(b"not a png at all")
    with pytest.raises(ImageReadError, match="junk_mask.png"):
        read_mask(tmp_path / "junk_mask.png")
    ok, buf = cv2.imencode(".png", np.full((40, 40), 255, np.uint8))
    (tmp_path / "cut_mask.png").write_bytes(buf.tobytes()[:-20])
    with pytest.raises(ImageReadError, match="truncated"):
        read_mask(tmp_path / "cut_mask.png")


@pytest.mark.parametrize("workers", [1, 2])
def test_derive_masks_writes_id_mask_png_and_reports_failures(tmp_path, workers):
    paths = []
    for i in range(3):
        img, _ = synthetic_radiograph(seed=i, h=320, w=240)
        paths.append(tmp_path / "img" / f"{100 + i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(paths[-1]), img)
    (tmp_path / "img" / "999.png").write_bytes(b"garbage")
    paths.append(tmp_path / "img" / "999.png")
    written, failed = derive_masks(paths, tmp_path / "masks", workers=workers, progress=False)
    assert written == [mask_path_for(tmp_path / "masks", str(100 + i)) for i in range(3)]
    assert all(p.name.endswith("_mask.png") and p.is_file() for p in written)
    assert [p.name for p, _ in failed] == ["999.png"]
    assert read_mask(written[0]).shape == (320, 240)


@pytest.mark.rsna_sample
def test_derived_masks_on_real_rsna_sample_contain_the_keypoints():
    """On the 12 real radiographs the derived mask must hold (nearly) every annotated hand
    keypoint, be one main hand, and not cover most of the picture (tags/borders excluded)."""
    if not RSNA_SAMPLE.is_dir():
        pytest.skip("../shared/rsna_sample not available")
    data = json.loads((RSNA_SAMPLE / "hand21_keypoints_halfscale.json").read_text())
    inside = total = 0
    for ann in data["annotations"]:
        side = "left" if ann["lefthand_valid"] else "right"
        kps = np.asarray(ann[f"{side}hand_kpts"], float).reshape(-1, 3)
        gray = cv2.imread(str(RSNA_SAMPLE / f"{ann['image_id']}.png"), cv2.IMREAD_GRAYSCALE)
        mask = derive_hand_mask(gray)
        assert 0.08 < mask.mean() < 0.5, (ann["image_id"], mask.mean())
        xs = np.clip(np.round(kps[:, 0]).astype(int), 0, gray.shape[1] - 1)
        ys = np.clip(np.round(kps[:, 1]).astype(int), 0, gray.shape[0] - 1)
        hits = int(mask[ys, xs].sum())
        assert hits >= 18, (ann["image_id"], hits)
        inside += hits
        total += len(kps)
    assert inside / total > 0.97


# --- fragments, markers and second hands ---------------------------------------------------------


def hands_of(mask: np.ndarray, hand=None, k: int = 17) -> tuple[list[dict], int, list[str]]:
    """The converter's hand instances of a derived mask, the keypoints off it, and its notes."""
    notes: list[str] = []
    hands, outside = hands_from_mask(mask, hand, k, notes.append, derived=True)
    return hands, outside, notes


def test_fingers_cut_from_the_palm_by_a_thin_dark_gap_stay_one_hand():
    img, truth = synthetic_radiograph()
    img[310:322, 140:345] = 45  # a 12-px dark gap across every finger's base
    mask = derive_hand_mask(img)
    hands, _, _ = hands_of(mask)
    assert len(hands) == 1
    x, y, w, h = hands[0]["bbox"]
    ys, xs = np.nonzero(truth)
    assert y <= ys.min() + 8 and y + h >= ys.max() - 8  # fingertips to forearm
    assert x <= xs.min() + 8 and x + w >= xs.max() - 8
    assert (mask & truth).sum() / (mask | truth).sum() > 0.85


def test_two_separate_hands_stay_two_hands():
    left, left_truth = synthetic_radiograph(seed=0)
    right, right_truth = synthetic_radiograph(seed=1)
    img = np.concatenate([left, right[:, ::-1]], axis=1)
    truth = np.concatenate([left_truth, right_truth[:, ::-1]], axis=1)
    mask = derive_hand_mask(img)
    hands, _, _ = hands_of(mask)
    assert len(hands) == 2
    boxes = sorted(a["bbox"] for a in hands)
    assert boxes[0][0] + boxes[0][2] < 480 <= boxes[1][0]  # one hand per half
    assert (mask & truth).sum() / (mask | truth).sum() > 0.85


def test_a_tag_beside_the_wrist_stays_out_of_the_hand():
    img, truth = synthetic_radiograph()
    img[480:545, 318:378] = 215  # tag plate 18 px right of the forearm ...
    img[495:530, 338:346] = 60  # ... with a dark "L"
    img[522:530, 338:366] = 60
    mask = derive_hand_mask(img)
    assert mask[480:545, 318:378].mean() < 0.05
    assert len(hands_of(mask)[0]) == 1
    assert (mask & truth).sum() / (mask | truth).sum() > 0.85


def test_fragments_holding_keypoints_are_one_hand_whose_box_holds_them():
    mask = np.zeros((200, 100), bool)
    mask[10:60, 20:80] = True  # fingers
    mask[80:150, 15:85] = True  # palm, 20 px below
    mask[170:198, 2:30] = True  # no keypoint on it: another hand
    xy = [(50, 30), (30, 40), (50, 100), (70, 120), (50, 5)]  # the last one above the fingers
    kps = np.array([[x, y, 2.0] for x, y in xy])
    hand = HandKeypoints("1", 1, kps)
    hands, outside, _ = hands_of(mask, hand, k=5)
    assert len(hands) == 2 and outside == 1
    first = hands[0]
    assert first["num_keypoints"] == 5 and hands[1]["num_keypoints"] == 0
    assert first["bbox"] == [15.0, 5.5, 70.0, 144.5]  # both fragments and the keypoint at y=5
    assert first["area"] == 50 * 60 + 70 * 70
    notes: list[str] = []
    given, outside_given = hands_from_mask(mask, hand, 5, notes.append)  # a stored mask
    assert len(given) == 3 and outside_given == 3  # taken as it is: 2 keypoints on the fingers
    assert given[0]["bbox"] == [15.0, 80.0, 70.0, 70.0]


@pytest.mark.rsna_sample
def test_converted_real_sample_has_one_hand_box_holding_its_keypoints(tmp_path):
    """On the 12 real radiographs, --derive-masks gives one hand per film whose box holds every
    annotated keypoint and whose mask holds every keypoint (no mask-miss note)."""
    if not RSNA_SAMPLE.is_dir():
        pytest.skip("../shared/rsna_sample not available")
    rep = convert_split(
        RSNA_SAMPLE / "boneage-training-dataset_rows.csv",
        RSNA_SAMPLE,
        tmp_path / "train.json",
        keypoints=RSNA_SAMPLE / "hand21_keypoints_halfscale.json",
        derive_masks=True,
        progress=False,
    )
    assert rep.num_images == 12 and rep.num_hands == 12 and rep.num_mask_misses == 0
    data = json.loads((tmp_path / "train.json").read_text())
    for ann in (a for a in data["annotations"] if a["category_id"] == 1):
        x, y, w, h = ann["bbox"]
        kps = np.asarray(ann["keypoints"], float).reshape(-1, 3)
        assert ann["num_keypoints"] == 21
        cx, cy = kps[:, 0] + 0.5, kps[:, 1] + 0.5  # pixel centres, continuous coordinates
        assert ((cx >= x) & (cx <= x + w) & (cy >= y) & (cy <= y + h)).all(), ann["image_id"]
