"""RSNA readers and converter: header variants, every bad-input case (report line and strict
error), atomic and deterministic output, ROI geometry, masks, WholeBody-21, the CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest
from pycocotools import mask as mask_utils

from boneage_d2.convert.rsna import (
    ACTION_IMAGE_SKIPPED,
    ACTION_KEYPOINTS_IGNORED,
    ACTION_MASK_IGNORED,
    ACTION_NOTE,
    RSNAFormatError,
    convert_split,
    read_keypoints,
    read_labels,
    roi_box,
)
from boneage_d2.io.radiograph import (
    ImageReadError,
    check_image_complete,
    read_image_size,
    read_radiograph,
)
from tests.cli import load_tool
from tests.convert.test_hand_masks import synthetic_radiograph
from tests.fixtures import RSNA_SAMPLE

cli_main = load_tool("convert_rsna").main

K = 17
SIZES = {"101": (60, 80), "102": (80, 60), "103": (100, 100)}  # id -> (width, height)


# --- builders ------------------------------------------------------------------------------------


def write_png(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    assert cv2.imwrite(str(path), ((xx * 2 + yy) % 180 + 40).astype(np.uint8))


def keypoints_for(width: int, height: int, k: int = K) -> list[float]:
    """k visible points spread inside a width x height image (COCO convention)."""
    out: list[float] = []
    for j in range(k):
        out += [
            round(2 + (width - 5) * j / max(k - 1, 1), 2),
            round(3 + (height - 7) * j / k, 2),
            2,
        ]
    return out


def bonet_json(path: Path, entries: dict[str, dict], categories: list | None = None) -> Path:
    """BoNet-style json; entries: id -> {width, height, keypoints, bbox} (None = omitted key)."""
    images, anns = [], []
    for n, (rid, e) in enumerate(entries.items()):
        image = {"id": 500 + n, "file_name": f"{rid}.png"}
        if e.get("width") is not None:
            image.update(width=e["width"], height=e["height"])
        images.append(image)
        ann = {"id": 900 + n, "image_id": 500 + n, "category_id": 1, "num_keypoints": K}
        for key in ("keypoints", "bbox"):
            if e.get(key) is not None:
                ann[key] = e[key]
        anns.append(ann)
    if categories is None:
        categories = [{"id": 1, "name": "hand", "keypoints": [f"p{j}" for j in range(K)]}]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return path


def default_entries(sizes: dict[str, tuple[int, int]] = SIZES) -> dict[str, dict]:
    return {
        rid: {
            "width": w,
            "height": h,
            "keypoints": keypoints_for(w, h),
            "bbox": [1.0, 1.0, w - 2.0, h - 2.0],
        }
        for rid, (w, h) in sizes.items()
    }


LABEL_ROWS = [["101", "100", "True"], ["102", "50.5", "False"], ["103", "200", "True"]]


def write_labels(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def split(tmp_path: Path) -> dict[str, Path]:
    """A clean 3-image split: labels.csv, imgs/<id>.png, kp.json; outputs go to out/."""
    labels = write_labels(tmp_path / "labels.csv", ["id", "boneage", "male"], LABEL_ROWS)
    for rid, (w, h) in SIZES.items():
        write_png(tmp_path / "imgs" / f"{rid}.png", w, h)
    kp = bonet_json(tmp_path / "kp.json", default_entries())
    return {
        "root": tmp_path,
        "labels": labels,
        "images": tmp_path / "imgs",
        "keypoints": kp,
        "out": tmp_path / "out" / "train.json",
    }


def convert(env: dict[str, Path], **kw):
    args = {"keypoints": env["keypoints"], "progress": False}
    args.update(kw)
    return convert_split(env["labels"], env["images"], env["out"], **args)


def report_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


# --- header variants -----------------------------------------------------------------------------


def write_xlsx(path: Path, header: list, rows: list[list]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


HEADER_CASES = {
    "training": (
        "boneage-training-dataset.csv",
        ["id", "boneage", "male"],
        [["101", "100", "True"], ["102", "50", "False"]],
        [100.0, 50.0],
        [True, False],
    ),
    "validation_sex_before_age": (
        "Validation Dataset.csv",
        ["Image ID", "male", "Bone Age (months)"],
        [["101", "TRUE", "100"], ["102", "FALSE", "50"]],
        [100.0, 50.0],
        [True, False],
    ),
    "test_without_ages": (
        "boneage-test-dataset.csv",
        ["Case ID", "Sex"],
        [["101", "M"], ["102", "F"]],
        [None, None],
        [True, False],
    ),
    "test_ground_truth_csv_resave": (
        "Bone age ground truth.csv",
        ["Case ID", "Sex", "Ground truth bone age (months)"],
        [["101", "M", "100.57"], ["102", "F", "49.2"]],
        [100.57, 49.2],
        [True, False],
    ),
    "alias_ID_Male_Boneage": (
        "resources.csv",
        ["ID", "Male", "Boneage"],
        [["101", "true", "100"], ["102", "false", "50"]],
        [100.0, 50.0],
        [True, False],
    ),
    "alias_case_and_spaces_male_1_0": (
        "spaces.csv",
        ["  Image ID ", " MALE", "bone age (months) "],
        [["101", "1", "100"], ["102", "0", "50"]],
        [100.0, 50.0],
        [True, False],
    ),
    "alias_sex_male_female": (
        "sex.csv",
        ["case id", "sex", "boneage"],
        [["101", "male", "100"], ["102", "Female", "50"]],
        [100.0, 50.0],
        [True, False],
    ),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_header_variants_read_and_convert(tmp_path, case):
    name, header, rows, ages, males = HEADER_CASES[case]
    labels = write_labels(tmp_path / name, header, rows)
    df = read_labels(labels)
    assert list(df.columns) == ["id", "boneage", "male", "row"]
    assert df["id"].tolist() == ["101", "102"]
    assert [None if np.isnan(a) else a for a in df["boneage"]] == ages
    assert df["male"].tolist() == males and df["male"].dtype == bool
    assert df["row"].tolist() == [1, 2]
    for rid in ("101", "102"):
        write_png(tmp_path / "imgs" / f"{rid}.png", *SIZES[rid])
    rep = convert_split(labels, tmp_path / "imgs", tmp_path / "out.json", progress=False)
    data = load(tmp_path / "out.json")
    assert rep.num_images == 2 and not rep.issues
    assert [im["boneage"] for im in data["images"]] == ages
    assert [im["male"] for im in data["images"]] == males


def test_test_ground_truth_xlsx(tmp_path):
    path = write_xlsx(
        tmp_path / "Bone age ground truth.xlsx",
        ["Case ID", "Sex", "Ground truth bone age (months)"],
        [[4360, "M", 168.93], [4361, "F", 169.65], [4362, "M", 73]],
    )
    df = read_labels(path, require_age=True)
    assert df["id"].tolist() == ["4360", "4361", "4362"]
    assert df["boneage"].tolist() == [168.93, 169.65, 73.0]
    assert df["male"].tolist() == [True, False, True]


def test_xlsx_bad_row_numbers_are_data_rows(tmp_path):
    path = write_xlsx(
        tmp_path / "gt.xlsx",
        ["Case ID", "Sex", "Ground truth bone age (months)"],
        [[4360, "M", 168.9], [4361, "X", 169.6]],
    )
    with pytest.raises(RSNAFormatError) as e:
        read_labels(path, strict=True)
    assert (e.value.file, e.value.row, e.value.field) == ("gt.xlsx", 2, "Sex")


def test_missing_column_lists_accepted_names(tmp_path):
    path = write_labels(tmp_path / "labels.csv", ["id", "boneage"], [["1", "10"]])
    for strict in (False, True):
        with pytest.raises(RSNAFormatError) as e:
            read_labels(path, strict=strict)
        msg = str(e.value)
        assert msg.startswith("labels.csv row 0 (header) field 'male': no sex column")
        assert "'male'" in msg and "'Sex'" in msg
        assert (e.value.file, e.value.row, e.value.field) == ("labels.csv", 0, "male")
    path = write_labels(tmp_path / "noid.csv", ["patient", "boneage", "male"], [["1", "1", "1"]])
    with pytest.raises(RSNAFormatError, match="'Image ID', 'Case ID'"):
        read_labels(path)


def test_renamed_unknown_age_column_is_an_error_listing_accepted_names(tmp_path, split):
    path = write_labels(
        tmp_path / "renamed.csv", ["id", "bone_age_months", "male"], [["101", "10", "True"]]
    )
    with pytest.raises(RSNAFormatError) as e:
        read_labels(path)
    assert e.value.field == "boneage" and e.value.row == 0
    assert "'Bone Age (months)'" in str(e.value) and "'bone_age_months'" in str(e.value)
    with pytest.raises(RSNAFormatError):
        convert_split(path, split["images"], tmp_path / "o.json", progress=False)
    assert not (tmp_path / "o.json").exists()
    # required ages (train/val) also fail when the column is simply absent
    plain = write_labels(tmp_path / "plain.csv", ["id", "male"], [["101", "True"]])
    assert read_labels(plain)["boneage"].isna().all()
    with pytest.raises(RSNAFormatError, match="no bone-age column"):
        read_labels(plain, require_age=True)


def test_ambiguous_sex_columns(tmp_path):
    path = write_labels(tmp_path / "two.csv", ["id", "male", "Sex"], [["1", "True", "M"]])
    with pytest.raises(RSNAFormatError, match="keep one"):
        read_labels(path)


def test_blank_lines_keep_row_numbers(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("id,boneage,male\n1,10,True\n\n3,abc,False\n")
    bad: list = []
    df = read_labels(path, bad_rows=bad)
    assert df["row"].tolist() == [1]
    assert [(b.row, b.field) for b in bad] == [(3, "boneage")]


# --- bad input: report line in default mode, strict error naming file/row/field -----------------


def _set_label(env, row, col, value):
    rows = [list(r) for r in LABEL_ROWS]
    rows[row - 1][col] = value
    write_labels(env["labels"], ["id", "boneage", "male"], rows)


def _set_kp(env, rid, **changes):
    entries = default_entries()
    entries[rid].update(changes)
    bonet_json(env["keypoints"], entries)


def _cut(path: Path, keep: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep > 0 else data[:keep])


def _extra_kp(env):
    entries = default_entries()
    entries["999"] = {"width": 50, "height": 50, "keypoints": keypoints_for(50, 50), "bbox": None}
    bonet_json(env["keypoints"], entries)


def _missing_mask(env):
    for rid, (w, h) in SIZES.items():
        if rid != "102":
            m = np.zeros((h, w), np.uint8)
            m[5:-5, 5:-5] = 255
            (env["root"] / "masks").mkdir(exist_ok=True)
            cv2.imwrite(str(env["root"] / "masks" / f"{rid}_mask.png"), m)
    return {"mask_dir": env["root"] / "masks"}


def _wrong_size_mask(env):
    kw = _missing_mask(env)
    cv2.imwrite(str(env["root"] / "masks" / "102_mask.png"), np.zeros((10, 10), np.uint8))
    return kw


def _corrupt_idat(env):
    """Valid signature, IHDR and IEND, garbage compressed data: only decoding finds it."""
    path = env["images"] / "102.png"
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = b"\x00" * 40
    path.write_bytes(bytes(data))
    return {"derive_masks": True}


# name: (mutate(env) -> extra kwargs | None, file, row, field, reason pattern, action)
BAD_CASES = {
    "non_numeric_age": (
        lambda e: _set_label(e, 2, 1, "abc"),
        "labels.csv", 2, "boneage", "value 'abc' is not a number", ACTION_IMAGE_SKIPPED,
    ),
    "nan_age": (
        lambda e: _set_label(e, 2, 1, "NaN"),
        "labels.csv", 2, "boneage", "not a finite number", ACTION_IMAGE_SKIPPED,
    ),
    "empty_age": (
        lambda e: _set_label(e, 2, 1, ""),
        "labels.csv", 2, "boneage", "missing value", ACTION_IMAGE_SKIPPED,
    ),
    "negative_age": (
        lambda e: _set_label(e, 2, 1, "-3"),
        "labels.csv", 2, "boneage", "outside 0-240 months", ACTION_IMAGE_SKIPPED,
    ),
    "age_over_240": (
        lambda e: _set_label(e, 2, 1, "240.5"),
        "labels.csv", 2, "boneage", "outside 0-240 months", ACTION_IMAGE_SKIPPED,
    ),
    "unknown_sex": (
        lambda e: _set_label(e, 2, 2, "X"),
        "labels.csv", 2, "male", "not a known sex encoding", ACTION_IMAGE_SKIPPED,
    ),
    "non_integer_id": (
        lambda e: _set_label(e, 2, 0, "10x"),
        "labels.csv", 2, "id", "not an integer id", ACTION_IMAGE_SKIPPED,
    ),
    "duplicate_id": (
        lambda e: _set_label(e, 2, 0, "101"),
        "labels.csv", 2, "id", r"duplicate id 101 \(first at row 1\)", ACTION_IMAGE_SKIPPED,
    ),
    "missing_image": (
        lambda e: (e["images"] / "102.png").unlink(),
        "labels.csv", 2, "id", "image file 'imgs/102.png' not found", ACTION_IMAGE_SKIPPED,
    ),
    "unreadable_image": (
        lambda e: (e["images"] / "102.png").write_bytes(b"\x00garbage, not an image" * 10),
        "labels.csv", 2, "id", "image 'imgs/102.png': unreadable image", ACTION_IMAGE_SKIPPED,
    ),
    "truncated_png": (
        lambda e: _cut(e["images"] / "102.png", -30),
        "labels.csv", 2, "id", "truncated PNG", ACTION_IMAGE_SKIPPED,
    ),
    "truncated_png_masks_on": (
        lambda e: (_cut(e["images"] / "102.png", 60), {"derive_masks": True})[1],
        "labels.csv", 2, "id", "truncated PNG", ACTION_IMAGE_SKIPPED,
    ),
    "corrupt_pixels_masks_on": (
        _corrupt_idat,
        "labels.csv", 2, "id", "unreadable or truncated image", ACTION_IMAGE_SKIPPED,
    ),
    "keypoints_outside_image_json_size": (
        lambda e: _set_kp(e, "102", keypoints=[85.0, 10.0, 2] + keypoints_for(80, 60)[3:]),
        "kp.json", 2, "keypoints", r"keypoint 0 \(x=85, y=10\) is outside the 80x60 image",
        ACTION_KEYPOINTS_IGNORED,
    ),
    "keypoints_outside_image_png_size": (
        lambda e: _set_kp(
            e, "102", width=None, keypoints=keypoints_for(80, 60)[:-3] + [5.0, 61.0, 1]
        ),
        "kp.json", 2, "keypoints", r"keypoint 16 \(x=5, y=61\) is outside the 80x60 image",
        ACTION_KEYPOINTS_IGNORED,
    ),
    "wrong_keypoint_count": (
        lambda e: _set_kp(e, "102", keypoints=keypoints_for(80, 60, k=16)),
        "kp.json", 2, "keypoints", r"wrong keypoint count: 48 numbers \(16 points\), expected 51",
        ACTION_KEYPOINTS_IGNORED,
    ),
    "keypoints_for_image_not_in_labels": (
        _extra_kp,
        "kp.json", 4, "file_name", "keypoints for image 999.png, which is not among",
        ACTION_KEYPOINTS_IGNORED,
    ),
    "keypoint_json_size_differs_from_png": (
        lambda e: _set_kp(e, "102", width=160, height=120),
        "kp.json", 2, "width/height", "gives 160x120 for 'imgs/102.png', the PNG is 80x60",
        ACTION_KEYPOINTS_IGNORED,
    ),
    "missing_mask": (
        _missing_mask,
        "labels.csv", 2, "id", "mask 'masks/102_mask.png': mask file not found",
        ACTION_MASK_IGNORED,
    ),
    "mask_of_wrong_size": (
        _wrong_size_mask,
        "labels.csv", 2, "id", "mask 'masks/102_mask.png' is 10x10, the image is 80x60",
        ACTION_MASK_IGNORED,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_report_line_and_strict_error(split, case):
    mutate, file, row, fieldname, pattern, action = BAD_CASES[case]
    kw = mutate(split)
    kw = kw if isinstance(kw, dict) else {}

    # default mode: the row is skipped and reported, the rest converted
    rep = convert(split, **kw)
    lines = report_rows(rep.report_path)
    assert Path(rep.report_path).name == "train.skipped.csv"
    hits = [
        r
        for r in lines
        if (r["file"], r["row"], r["field"], r["action"]) == (file, str(row), fieldname, action)
        and re.search(pattern, r["reason"])
    ]
    assert hits, lines
    data = load(split["out"])
    ids = [im["rsna_id"] for im in data["images"]]
    if action == ACTION_IMAGE_SKIPPED:
        assert "102" not in ids and rep.skipped_images >= 1
    else:
        assert "102" in ids
    if action == ACTION_KEYPOINTS_IGNORED and case != "keypoints_for_image_not_in_labels":
        im = next(im for im in data["images"] if im["rsna_id"] == "102")
        assert im["has_keypoints"] is False
        assert not [a for a in data["annotations"] if a["image_id"] == 102]

    # strict mode: the first bad row raises, naming file/row/field; nothing is written
    split["out"].unlink()
    Path(rep.report_path).unlink()
    with pytest.raises(RSNAFormatError) as e:
        convert(split, strict=True, **kw)
    assert (e.value.file, e.value.row, e.value.field) == (file, row, fieldname)
    assert str(e.value).startswith(f"{file} row {row} field '{fieldname}': ")
    assert re.search(pattern, str(e.value))
    assert not split["out"].exists() and not Path(rep.report_path).exists()
    assert not list(split["out"].parent.glob(".*.tmp"))


def test_truncated_png_has_a_readable_header_but_fails_the_trailer_check(tmp_path):
    write_png(tmp_path / "a.png", 40, 30)
    _cut(tmp_path / "a.png", -30)
    assert read_image_size(tmp_path / "a.png") == (40, 30)
    with pytest.raises(ImageReadError, match="truncated PNG"):
        check_image_complete(tmp_path / "a.png")
    with pytest.raises(ImageReadError, match="truncated"):
        read_radiograph(tmp_path / "a.png")


def test_corrupt_pixels_pass_when_masks_are_off(split):
    """Documented limit: without decoding, only existence, header and trailer are checked."""
    _corrupt_idat(split)
    rep = convert(split)
    assert rep.num_images == 3 and not rep.bad_rows


# --- atomic, deterministic -----------------------------------------------------------------------


def test_strict_failure_leaves_existing_output_unchanged(split):
    split["out"].parent.mkdir(parents=True)
    split["out"].write_text("OLD")
    report = split["out"].with_name("train.skipped.csv")
    report.write_text("OLD REPORT")
    _set_label(split, 3, 1, "abc")
    with pytest.raises(RSNAFormatError):
        convert(split, strict=True)
    assert split["out"].read_text() == "OLD" and report.read_text() == "OLD REPORT"
    assert sorted(p.name for p in split["out"].parent.iterdir()) == [
        "train.json",
        "train.skipped.csv",
    ]


def test_output_is_deterministic_and_path_independent(split):
    _set_label(split, 2, 1, "abc")  # a report line too
    convert(split)
    first = split["out"].read_bytes(), split["out"].with_name("train.skipped.csv").read_bytes()
    convert(split)
    second = split["out"].read_bytes(), split["out"].with_name("train.skipped.csv").read_bytes()
    assert first == second
    other = split["root"] / "out2" / "train.json"
    convert_split(
        split["labels"],
        split["images"],
        other,
        keypoints=split["keypoints"],
        workers=2,
        progress=False,
    )
    assert other.read_bytes() == first[0]
    text = first[0].decode() + first[1].decode()
    assert str(split["root"]) not in text  # no absolute paths


def test_json_schema(split):
    rep = convert(split, split_name="train")
    data = load(split["out"])
    assert list(data) == ["info", "licenses", "images", "annotations", "categories"]
    info = data["info"]
    assert info["split"] == "train" and info["keypoint_format"] == "bonet17"
    assert info["roi_size_px"] == 64 and info["roi_reference_long_side"] == 512
    assert isinstance(info["version"], str) and info["version"]
    assert set(info["source"]) == {"labels.csv", "kp.json"}
    assert all(re.fullmatch("[0-9a-f]{40}", v) for v in info["source"].values())
    assert [im["id"] for im in data["images"]] == [101, 102, 103]
    im = data["images"][1]
    assert list(im) == [
        "id",
        "file_name",
        "width",
        "height",
        "rsna_id",
        "boneage",
        "male",
        "has_keypoints",
    ]
    assert im == {
        "id": 102,
        "file_name": "../imgs/102.png",
        "width": 80,
        "height": 60,
        "rsna_id": "102",
        "boneage": 50.5,
        "male": False,
        "has_keypoints": True,
    }
    assert (split["out"].parent / im["file_name"]).is_file()
    hands = [a for a in data["annotations"] if a["category_id"] == 1]
    rois = [a for a in data["annotations"] if a["category_id"] == 2]
    assert len(hands) == 3 and len(rois) == 3 * K
    assert rep.num_hands == 3 and rep.num_rois == 3 * K and rep.num_with_keypoints == 3
    h = hands[1]
    assert list(h) == [
        "id",
        "image_id",
        "category_id",
        "bbox",
        "area",
        "iscrowd",
        "keypoints",
        "num_keypoints",
    ]
    assert h["bbox"] == [1.0, 1.0, 78.0, 58.0] and h["area"] == 78.0 * 58.0
    assert h["keypoints"] == keypoints_for(80, 60) and h["num_keypoints"] == K
    assert [a["id"] for a in data["annotations"]] == list(range(1, len(data["annotations"]) + 1))
    assert [r["landmark"] for r in rois if r["image_id"] == 102] == list(range(K))
    cats = data["categories"]
    assert cats[0]["name"] == "hand" and len(cats[0]["keypoints"]) == K
    assert cats[0]["keypoints"][0] == "radius" and cats[0]["skeleton"] == []
    assert cats[1] == {"id": 2, "name": "anatomical_roi", "supercategory": "hand"}


def test_images_without_keypoints_are_kept(split):
    entries = default_entries()
    entries["101"]["keypoints"] = [0.0] * (3 * K)  # all-zero = no keypoints
    entries["102"]["bbox"] = [10.0, 10.0, 0.0, 20.0]  # zero-width box = no keypoints
    del entries["103"]  # no annotation at all
    bonet_json(split["keypoints"], entries)
    kp = read_keypoints(split["keypoints"])
    assert kp.hands == {} and sorted(kp.no_keypoints) == ["101", "102"]
    rep = convert(split)
    data = load(split["out"])
    assert rep.num_images == 3 and not rep.issues
    assert [im["has_keypoints"] for im in data["images"]] == [False, False, False]
    assert data["annotations"] == []  # no mask, no keypoints: global-only training


# --- ROI geometry --------------------------------------------------------------------------------


def test_roi_box_centre_size_and_clipping():
    assert roi_box(100, 200, 512, 300) == [68.5, 168.5, 64.0, 64.0]  # centre (x+0.5, y+0.5)
    assert roi_box(100, 200, 600, 1024) == [36.5, 136.5, 128.0, 128.0]  # side scales with long side
    assert roi_box(100, 200, 512, 300, 32, 256) == roi_box(100, 200, 512, 300)
    assert roi_box(0, 0, 512, 512) == [0.0, 0.0, 32.5, 32.5]  # clipped at the top-left
    assert roi_box(511, 511, 512, 512) == [479.5, 479.5, 32.5, 32.5]  # and the bottom-right
    assert roi_box(-0.5, 10, 50, 40, 64, 512) == [0.0, 7.375, 3.125, 6.25]


def test_converted_roi_boxes_follow_the_keypoints(tmp_path):
    labels = write_labels(tmp_path / "l.csv", ["id", "boneage", "male"], [["7", "12", "True"]])
    write_png(tmp_path / "im" / "7.png", 1024, 768)
    kps = keypoints_for(1024, 768)
    kps[3:6] = [0.0, 0.0, 0]  # an invisible point gets no ROI and is zeroed
    kps[6:9] = [1023.0, 767.0, 1]
    bonet_json(tmp_path / "k.json", {"7": {"width": 1024, "height": 768, "keypoints": kps}})
    convert_split(
        labels, tmp_path / "im", tmp_path / "o.json", keypoints=tmp_path / "k.json", progress=False
    )
    data = load(tmp_path / "o.json")
    hand = next(a for a in data["annotations"] if a["category_id"] == 1)
    assert hand["num_keypoints"] == K - 1 and hand["keypoints"][3:6] == [0.0, 0.0, 0]
    vis = [p for p in np.asarray(kps).reshape(-1, 3) if p[2] > 0]
    hand_box = hand["bbox"]  # no bbox in the json: the keypoints' extent
    assert hand_box[0] == pytest.approx(min(p[0] for p in vis) + 0.5)
    rois = {a["landmark"]: a for a in data["annotations"] if a["category_id"] == 2}
    assert sorted(rois) == [j for j in range(K) if j != 1]
    side = 64 * 1024 / 512
    for j, r in rois.items():
        x, y = kps[3 * j], kps[3 * j + 1]
        x0, y0, w, h = r["bbox"]
        assert r["area"] == pytest.approx(w * h)
        if j == 2:  # at the bottom-right corner: clipped to a quarter
            assert r["bbox"] == [
                1023.5 - side / 2,
                767.5 - side / 2,
                side / 2 + 0.5,
                side / 2 + 0.5,
            ]
        elif x0 > 0 and y0 > 0 and x0 + w < 1024 and y0 + h < 768:
            assert (x0 + w / 2, y0 + h / 2) == pytest.approx((x + 0.5, y + 0.5))
            assert (w, h) == (side, side)


# --- masks ---------------------------------------------------------------------------------------


def test_mask_components_become_hands_and_keypoints_go_to_the_right_one(split):
    mask_dir = split["root"] / "masks"
    mask_dir.mkdir()
    w, h = SIZES["103"]  # 100 x 100
    m = np.zeros((h, w), np.uint8)
    m[0:100, 0:40] = 255  # hand A (largest)
    m[10:90, 60:95] = 200  # hand B
    m[50:52, 50:52] = 255  # 4 px < 1% of the image: dropped
    cv2.imwrite(str(mask_dir / "103_mask.png"), m)
    kps = []
    for j in range(K):  # 12 keypoints on B, 5 on A
        x, y = (70 + j % 5, 20 + 4 * j) if j < 12 else (10, 10 + 10 * (j - 12))
        kps += [float(x), float(y), 2]
    entries = default_entries()
    entries["103"]["keypoints"] = kps
    bonet_json(split["keypoints"], entries)
    for rid in ("101", "102"):  # the other images: a full mask, and no keypoints for 102
        cv2.imwrite(str(mask_dir / f"{rid}_mask.png"), np.full(SIZES[rid][::-1], 255, np.uint8))
    del entries["102"]
    bonet_json(split["keypoints"], entries)

    rep = convert(split, mask_dir=mask_dir)
    assert not rep.bad_rows
    data = load(split["out"])
    hands = [a for a in data["annotations"] if a["category_id"] == 1 and a["image_id"] == 103]
    assert len(hands) == 2
    b, a = hands  # the hand with the keypoints comes first
    assert b["bbox"] == [60.0, 10.0, 35.0, 80.0] and b["area"] == 35 * 80
    assert b["keypoints"] == kps and b["num_keypoints"] == K
    assert a["bbox"] == [0.0, 0.0, 40.0, 100.0] and a["num_keypoints"] == 0
    assert a["keypoints"] == [0.0, 0.0, 0] * K
    decoded = mask_utils.decode(
        {"size": b["segmentation"]["size"], "counts": b["segmentation"]["counts"].encode()}
    )
    assert b["segmentation"]["size"] == [100, 100] and isinstance(b["segmentation"]["counts"], str)
    assert decoded.sum() == 35 * 80 and decoded[10:90, 60:95].all()
    # image 102 has a mask but no keypoints: its hand box, all-zero keypoints, no ROI boxes
    im102 = [x for x in data["annotations"] if x["image_id"] == 102]
    assert [x["category_id"] for x in im102] == [1]
    assert im102[0]["num_keypoints"] == 0 and im102[0]["bbox"] == [0.0, 0.0, 80.0, 60.0]
    assert next(im for im in data["images"] if im["id"] == 102)["has_keypoints"] is False
    assert data["info"]["hand_masks"] == "folder masks"


def test_empty_mask_falls_back_to_the_keypoint_box_with_a_note(split):
    mask_dir = split["root"] / "masks"
    mask_dir.mkdir()
    for rid, (w, h) in SIZES.items():
        cv2.imwrite(str(mask_dir / f"{rid}_mask.png"), np.zeros((h, w), np.uint8))
    rep = convert(split, mask_dir=mask_dir, strict=True)  # notes never raise
    assert [b.action for b in rep.issues] == [ACTION_NOTE] * 3
    hands = [a for a in load(split["out"])["annotations"] if a["category_id"] == 1]
    assert len(hands) == 3 and "segmentation" not in hands[0]


def test_a_mask_missing_keypoints_is_reported_and_nothing_else_changes(split):
    mask_dir = split["root"] / "masks"
    mask_dir.mkdir()
    for rid, (w, h) in SIZES.items():  # full masks: every keypoint on its hand
        cv2.imwrite(str(mask_dir / f"{rid}_mask.png"), np.full((h, w), 255, np.uint8))
    convert(split, mask_dir=mask_dir)
    full = load(split["out"])
    assert report_rows(split["out"].with_name("train.skipped.csv")) == []
    half = np.zeros((100, 100), np.uint8)
    half[:, :50] = 255  # image 103: the mask holds only the keypoints with x < 50
    cv2.imwrite(str(mask_dir / "103_mask.png"), half)
    rep = convert(split, mask_dir=mask_dir, strict=True)  # a note never raises
    kps = np.asarray(keypoints_for(100, 100), float).reshape(-1, 3)
    outside = int((np.floor(kps[:, 0] + 0.5) >= 50).sum())
    assert 0 < outside < K and rep.num_mask_misses == 1 and not rep.bad_rows
    assert rep.summary().endswith(", 0 problems reported, 1 hand masks missing keypoints")
    rows = report_rows(split["out"].with_name("train.skipped.csv"))
    assert rows == [
        {
            "file": "kp.json",
            "row": "3",
            "field": "keypoints",
            "action": ACTION_NOTE,
            "reason": f"{outside} of {K} visible keypoints lie outside the hand mask "
            "'masks/103_mask.png' of 'imgs/103.png'",
        }
    ]
    data = load(split["out"])
    fine = [a for a in full["annotations"] if a["image_id"] != 103]
    assert [a for a in data["annotations"] if a["image_id"] != 103] == fine
    hand103 = next(a for a in data["annotations"] if a["image_id"] == 103 and a["category_id"] == 1)
    assert hand103["bbox"] == [0.0, 0.0, 50.0, 100.0]  # a stored mask's box is kept as it is


def test_a_derived_mask_missing_keypoints_widens_the_box_and_is_reported(tmp_path):
    img, truth = synthetic_radiograph()
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "7.png"), img)
    ys, xs = np.nonzero(cv2.erode(truth.astype(np.uint8), np.ones((17, 17), np.uint8)))
    kps = []
    for j in range(K - 1):  # well inside the hand ...
        kps += [float(xs[j * 997 % len(xs)]), float(ys[j * 997 % len(ys)]), 2]
    kps += [440.0, 600.0, 2]  # ... and one in the background, below-right of the forearm
    entries = {"7": {"width": 480, "height": 640, "keypoints": kps, "bbox": None}}
    env = {
        "labels": write_labels(
            tmp_path / "labels.csv", ["id", "boneage", "male"], [["7", "90", "True"]]
        ),
        "images": tmp_path / "imgs",
        "keypoints": bonet_json(tmp_path / "kp.json", entries),
        "out": tmp_path / "out" / "train.json",
    }
    rep = convert(env, derive_masks=True)
    assert rep.num_hands == 1 and rep.num_mask_misses == 1
    [row] = report_rows(tmp_path / "out" / "train.skipped.csv")
    assert (row["file"], row["row"], row["field"], row["action"]) == (
        "kp.json",
        "1",
        "keypoints",
        ACTION_NOTE,
    )
    assert row["reason"] == (
        f"1 of {K} visible keypoints lie outside the derived hand mask of 'imgs/7.png'; "
        "the hand box is widened to hold them"
    )
    [hand] = [a for a in load(env["out"])["annotations"] if a["category_id"] == 1]
    x, y, w, h = hand["bbox"]
    assert x + w == pytest.approx(440.5) and y + h >= 600.5  # widened to the keypoint's centre
    assert hand["num_keypoints"] == K


def test_derived_masks_give_segmentations(split):
    rep = convert(split, derive_masks=True)
    data = load(split["out"])
    assert data["info"]["hand_masks"].startswith("derived")
    assert rep.num_images == 3  # tiny gradient images: whatever is found, nothing breaks
    with pytest.raises(ValueError):
        convert(split, derive_masks=True, mask_dir=split["root"])


# --- keypoint formats ----------------------------------------------------------------------------


def wholebody_json(path: Path, anns: list[dict]) -> Path:
    images = [
        {"id": str(a["id"]), "file_name": f"{a['id']}.png", "width": 80, "height": 60} for a in anns
    ]
    out = []
    for a in anns:
        rec = {"id": str(a["id"]), "image_id": str(a["id"]), "category_id": 1, "bbox": [0, 0, 1, 1]}
        for side in ("left", "right"):
            valid = a.get(side, False)
            rec[f"{side}hand_valid"] = valid
            rec[f"{side}hand_kpts"] = keypoints_for(80, 60, 21) if valid else [0.0, 0.0, 0] * 21
            rec[f"{side}hand_box"] = [1.0, 2.0, 70.0, 50.0] if valid else [0.0, 0.0, 0.0, 0.0]
        rec["keypoints"] = [0.0] * 51  # WholeBody body keypoints: must be ignored
        out.append(rec)
    path.write_text(json.dumps({"images": images, "annotations": out, "categories": []}))
    return path


def test_wholebody21_picks_the_valid_hand_and_reports_both(tmp_path):
    path = wholebody_json(
        tmp_path / "wb.json",
        [
            {"id": 1, "left": True},
            {"id": 2, "right": True},
            {"id": 3},
            {"id": 4, "left": True, "right": True},
        ],
    )
    kp = read_keypoints(path)
    assert kp.format == "wholebody21" and kp.num_keypoints == 21
    assert kp.keypoint_names[0] == "wrist" and len(kp.keypoint_names) == 21
    assert {r: h.hand for r, h in kp.hands.items()} == {"1": "left", "2": "right", "4": "left"}
    assert list(kp.no_keypoints) == ["3"]
    assert kp.hands["2"].bbox == [1.0, 2.0, 70.0, 50.0]
    assert [(b.row, b.action) for b in kp.issues] == [(4, ACTION_NOTE)]
    assert "both hands are valid" in kp.issues[0].reason
    read_keypoints(path, strict=True)  # a note is not an error


def test_generic_k_from_the_data(tmp_path):
    entries = {"1": {"width": 80, "height": 60, "keypoints": keypoints_for(80, 60, k=5)}}
    path = bonet_json(tmp_path / "k5.json", entries, categories=[{"id": 1, "name": "hand"}])
    kp = read_keypoints(path)
    assert (kp.format, kp.num_keypoints) == ("coco5", 5)
    assert kp.keypoint_names == ("kp_0", "kp_1", "kp_2", "kp_3", "kp_4")
    entries["2"] = {"width": 80, "height": 60, "keypoints": keypoints_for(80, 60, k=17)}
    entries["3"] = {"width": 80, "height": 60, "keypoints": keypoints_for(80, 60, k=17)}
    kp = read_keypoints(bonet_json(tmp_path / "mixed.json", entries, categories=[]))
    assert (kp.format, kp.num_keypoints) == ("bonet17", 17)  # the most common length
    assert [(b.row, b.field) for b in kp.issues] == [(1, "keypoints")]


def test_keypoints_join_by_file_name_not_json_ids(split):
    kp = read_keypoints(split["keypoints"])
    assert sorted(kp.hands) == ["101", "102", "103"]  # json image ids are 500.., not RSNA ids
    assert kp.hands["102"].row == 2 and kp.hands["102"].image_size == (80, 60)


def test_invalid_json_is_a_file_error(tmp_path, split):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RSNAFormatError, match="bad.json row 0 .*not valid json"):
        read_keypoints(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        read_keypoints(tmp_path / "absent.json")


@pytest.mark.rsna_sample
def test_wholebody21_reader_on_the_real_sample(tmp_path):
    if not RSNA_SAMPLE.is_dir():
        pytest.skip("../shared/rsna_sample not available")
    kp = read_keypoints(RSNA_SAMPLE / "hand21_keypoints_halfscale.json")
    assert kp.format == "wholebody21" and kp.num_keypoints == 21
    assert len(kp.hands) == 12 and not kp.issues
    assert kp.hands["1707"].hand == "right"
    assert {h.hand for r, h in kp.hands.items() if r != "1707"} == {"left"}
    rep = convert_split(
        RSNA_SAMPLE / "boneage-training-dataset_rows.csv",
        RSNA_SAMPLE,
        tmp_path / "sample.json",
        keypoints=kp,
        progress=False,
    )
    assert (rep.num_images, rep.num_with_keypoints, rep.num_rois) == (12, 12, 12 * 21)
    assert not rep.issues
    data = load(tmp_path / "sample.json")
    assert data["info"]["keypoint_format"] == "wholebody21"
    assert len(data["categories"][0]["keypoints"]) == 21
    im = next(i for i in data["images"] if i["id"] == 1707)
    assert (im["width"], im["height"], im["boneage"], im["male"]) == (757, 1022, 106.0, False)


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_one_split(split, capsys):
    rc = cli_main(
        [
            "--labels", str(split["labels"]),
            "--images", str(split["images"]),
            "--keypoints", str(split["keypoints"]),
            "--output", str(split["out"]),
            "--roi-size", "32",
            "--quiet",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "3 images (3 with keypoints" in out and "3 hands, 51 ROI boxes" in out
    assert "train.skipped.csv" in out
    assert load(split["out"])["info"]["roi_size_px"] == 32


def test_cli_strict_failure_is_one_line_and_exit_1(split, capsys):
    _set_label(split, 2, 1, "abc")
    args = ["--labels", str(split["labels"]), "--images", str(split["images"])]
    rc = cli_main([*args, "--output", str(split["out"]), "--strict", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and not split["out"].exists()
    assert err == "error: labels.csv row 2 field 'boneage': value 'abc' is not a number\n"
    rc = cli_main([*args, "--output", str(split["out"]), "--quiet"])  # default mode: skipped
    assert rc == 0 and "1 label rows skipped" in capsys.readouterr().out


def test_cli_missing_inputs_exit_1(split, capsys):
    rc = cli_main(["--labels", "nope.csv", "--images", str(split["images"]), "--output", "o.json"])
    assert rc == 1 and capsys.readouterr().err.startswith("error: nope.csv: label file not found")
    rc = cli_main(["--rsna-root", str(split["root"] / "absent"), "--output-dir", "x"])
    assert rc == 1
    with pytest.raises(SystemExit) as e:
        cli_main(["--labels", str(split["labels"])])  # usage error
    assert e.value.code == 2


def make_raw_root(root: Path, with_xlsx: bool) -> None:
    """A miniature raw layout (docs/data.md) with all three splits and masks."""
    specs = {
        "train": ("boneage-training-dataset", ["101", "102"], "RSNA_Anatomical_ROIs_Training.json"),
        "val": ("boneage-validation-dataset", ["201"], "RSNA_Anatomical_ROIs_Validation.json"),
        "test": ("boneage-test-dataset", ["4360", "4361"], "RSNA_Anatomical_ROIs_Test.json"),
    }
    for folder, ids, kp_name in specs.values():
        for rid in ids:
            write_png(root / folder / f"{rid}.png", 64, 48)
            m = np.zeros((48, 64), np.uint8)
            m[4:44, 8:56] = 255
            (root / "masks").mkdir(exist_ok=True)
            cv2.imwrite(str(root / "masks" / f"{rid}_mask.png"), m)
        entries = {r: {"width": 64, "height": 48, "keypoints": keypoints_for(64, 48)} for r in ids}
        bonet_json(root / kp_name, entries)
    write_labels(
        root / "boneage-training-dataset.csv",
        ["id", "boneage", "male"],
        [["101", "30", "True"], ["102", "40", "False"]],
    )
    write_labels(
        root / "Validation Dataset.csv",
        ["Image ID", "male", "Bone Age (months)"],
        [["201", "TRUE", "77"]],
    )
    write_labels(
        root / "boneage-test-dataset.csv", ["Case ID", "Sex"], [["4360", "M"], ["4361", "F"]]
    )
    if with_xlsx:
        write_xlsx(
            root / "Bone age ground truth.xlsx",
            ["Case ID", "Sex", "Ground truth bone age (months)"],
            [[4360, "M", 168.93], [4361, "F", 169.65]],
        )


@pytest.mark.parametrize("with_xlsx", [True, False])
def test_cli_rsna_root_converts_every_split(tmp_path, capsys, with_xlsx):
    make_raw_root(tmp_path / "raw", with_xlsx)
    out = tmp_path / "converted"
    rc = cli_main(["--rsna-root", str(tmp_path / "raw"), "--output-dir", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert sorted(p.name for p in out.glob("*.json")) == ["test.json", "train.json", "val.json"]
    for name in ("train", "val", "test"):
        assert (out / f"{name}.skipped.csv").is_file()
        data = load(out / f"{name}.json")
        assert data["info"]["split"] == name
        hands = [a for a in data["annotations"] if a["category_id"] == 1]
        assert hands and all("segmentation" in a for a in hands)  # masks from <root>/masks
    assert [im["boneage"] for im in load(out / "val.json")["images"]] == [77.0]
    test_ages = [im["boneage"] for im in load(out / "test.json")["images"]]
    if with_xlsx:
        assert test_ages == [168.93, 169.65]
        assert "labels from 'Bone age ground truth.xlsx'" in printed
    else:
        assert test_ages == [None, None]
        assert "labels from 'boneage-test-dataset.csv'" in printed
    assert (
        load(out / "train.json")["images"][0]["file_name"]
        == "../raw/boneage-training-dataset/101.png"
    )


def test_strict_with_workers_raises_the_first_bad_image_in_id_order(split):
    (split["images"] / "102.png").unlink()
    (split["images"] / "103.png").write_bytes(b"junk")
    with pytest.raises(RSNAFormatError) as e:
        convert(split, strict=True, workers=2)
    assert (e.value.row, e.value.field) == (2, "id") and "not found" in str(e.value)
    assert not split["out"].exists()
