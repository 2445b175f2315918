"""Hand-drawn ROI boxes (Pascal VOC XML): landmark order for left/right, mirrored and rotated
hands, scaling to the converted image, every bad-input case (report line and strict error), the
CLI, and the real release's files when they are beside the checkout."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest

from boneage_d2.convert.rsna import (
    ACTION_IMAGE_SKIPPED,
    ACTION_ROIS_IGNORED,
    RSNAFormatError,
    convert_split,
    read_roi_folder,
)
from boneage_d2.schema import CANONICAL_17
from tests.cli import load_tool
from tests.convert.test_rsna_convert import bonet_json, keypoints_for, write_labels, write_png
from tests.fixtures import RSNA_REAL

cli_main = load_tool("convert_rsna").main

FRAME = (800, 1000)  # the original film's <size>
IMAGE = (400, 500)  # the converted PNG: half size

# A left hand seen PA, thumb on the film's right (as in the release): wrist centre, then each
# digit's angle from the hand's axis (positive toward the thumb) and each joint's distance from
# the wrist. Box sizes differ per class, as drawn boxes do.
WRIST = (400.0, 780.0)
DIGITS = {"thumb": 50, "index": 18, "middle": 2, "ring": -14, "little": -30}
RADII = {
    "mcp": {"thumb": 150, "index": 330, "middle": 340, "ring": 330, "little": 300},
    "ip": {"thumb": 280},
    "pip": {"index": 480, "middle": 500, "ring": 480, "little": 430},
    "dip": {"index": 580, "middle": 610, "ring": 580, "little": 520},
}
SIZES = {"mcp": (44, 36), "ip": (34, 30), "pip": (36, 30), "dip": (30, 24)}
VOC_NAME = {"mcp": "MCP", "ip": "PIP", "pip": "PIP", "dip": "DIP"}


def _box(cx: float, cy: float, w: int, h: int) -> tuple[int, int, int, int]:
    """A VOC box (1-based first and last pixel) of about w x h around (cx, cy)."""
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    return x0 + 1, y0 + 1, x0 + w, y0 + h


def hand_objects() -> list[tuple[str, int, tuple[int, int, int, int]]]:
    """``(VOC class, true landmark index, box)`` for the 17 regions of the synthetic hand."""
    objs = [
        ("Wrist", CANONICAL_17.index("carpal"), _box(*WRIST, 200, 130)),
        ("Radius", CANONICAL_17.index("radius"), _box(455, 905, 90, 50)),
        ("Ulna", CANONICAL_17.index("ulna"), _box(340, 910, 60, 45)),
    ]
    for joint, radii in RADII.items():
        for digit, r in radii.items():
            a = math.radians(DIGITS[digit])
            cx, cy = WRIST[0] + r * math.sin(a), WRIST[1] - r * math.cos(a)
            landmark = CANONICAL_17.index(f"{digit}_{joint}")
            objs.append((VOC_NAME[joint], landmark, _box(cx, cy, *SIZES[joint])))
    return objs


def mirrored(objs, frame=FRAME):
    """The film flipped left-right (1-based pixel x -> W + 1 - x)."""
    w = frame[0]
    return [(n, k, (w + 1 - x1, y0, w + 1 - x0, y1)) for n, k, (x0, y0, x1, y1) in objs]


def rotated_90(objs, frame=FRAME):
    """The film turned a quarter clockwise: pixel (x, y) -> (H + 1 - y, x); frame (H, W)."""
    h = frame[1]
    return [(n, k, (h + 1 - y1, x0, h + 1 - y0, x1)) for n, k, (x0, y0, x1, y1) in objs]


def voc_text(objs, frame=FRAME, filename: str | None = "auto", stem: str = "101") -> str:
    """A Pascal VOC annotation as the release writes it (objects in the given order)."""
    name = f"{stem}.png" if filename == "auto" else filename
    parts = ["<annotation>", "\t<folder>films</folder>"]
    if name is not None:
        parts.append(f"\t<filename>{name}</filename>")
    parts.append(
        f"\t<size><width>{frame[0]}</width><height>{frame[1]}</height><depth>1</depth></size>"
    )
    for cls, _, (x0, y0, x1, y1) in objs:
        parts.append(
            f"\t<object><name>{cls}</name><pose>Unspecified</pose><bndbox><xmin>{x0}</xmin>"
            f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def write_voc(folder: Path, stem: str, objs, frame=FRAME, **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.xml"
    path.write_text(voc_text(objs, frame, stem=stem, **kw))
    return path


def read_landmarks(folder: Path, stem: str = "101") -> dict[int, int]:
    """``<object> position -> landmark`` as the reader assigns them."""
    films = read_roi_folder(folder, strict=True).films
    return {row: k for k, row, _ in films[stem].boxes}


# --- landmark order ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "view",
    ["left_hand", "mirrored", "rotated_90", "mirrored_rotated_90", "upside_down", "shuffled"],
)
def test_each_box_gets_its_landmark_whatever_the_films_orientation(tmp_path, view):
    """The thumb side comes from the Radius/Ulna boxes: a mirrored film (or a right hand), a
    turned film and any object order give every box the same landmark."""
    objs, frame = hand_objects(), FRAME
    if "mirrored" in view:
        objs = mirrored(objs, frame)
    if "rotated_90" in view:
        objs, frame = rotated_90(objs, frame), frame[::-1]
    if view == "upside_down":
        objs, frame = rotated_90(objs, frame), frame[::-1]
        objs, frame = rotated_90(objs, frame), frame[::-1]
    if view == "shuffled":
        random.Random(0).shuffle(objs)
    write_voc(tmp_path / "rois", "101", objs, frame)
    got = read_landmarks(tmp_path / "rois")
    assert got == {row: k for row, (_, k, _) in enumerate(objs, start=1)}
    assert sorted(got.values()) == list(range(17))


def test_class_names_are_read_in_any_case(tmp_path):
    objs = [(cls.lower() if cls != "Wrist" else "WRIST", k, b) for cls, k, b in hand_objects()]
    write_voc(tmp_path / "rois", "101", objs)
    assert sorted(read_landmarks(tmp_path / "rois").values()) == list(range(17))


# --- scaling and the converted json --------------------------------------------------------------


@pytest.fixture
def split(tmp_path: Path) -> dict[str, Path]:
    """Films 101 and 102 (400x500 PNGs of 800x1000 originals) with their ROI box files."""
    labels = write_labels(
        tmp_path / "labels.csv",
        ["id", "boneage", "male"],
        [["101", "100", "True"], ["102", "50", "False"]],
    )
    for rid in ("101", "102"):
        write_png(tmp_path / "imgs" / f"{rid}.png", *IMAGE)
        write_voc(tmp_path / "rois", rid, hand_objects())
    return {
        "root": tmp_path,
        "labels": labels,
        "images": tmp_path / "imgs",
        "rois": tmp_path / "rois",
        "out": tmp_path / "out" / "train.json",
    }


def convert(env, **kw):
    args = {"rois": env["rois"], "progress": False}
    args.update(kw)
    return convert_split(env["labels"], env["images"], env["out"], **args)


def rois_of(data: dict, image_id: int) -> list[dict]:
    return [a for a in data["annotations"] if a["image_id"] == image_id and a["category_id"] == 2]


def test_boxes_are_scaled_to_the_converted_image_and_keep_their_size(split):
    rep = convert(split, strict=True)
    assert (rep.num_images, rep.num_rois, rep.num_with_drawn_rois) == (2, 34, 2)
    assert "34 ROI boxes (2 films drawn)" in rep.summary() and not rep.issues
    data = json.loads(split["out"].read_text())
    assert data["info"]["source"]["rois/"] == read_roi_folder(split["rois"]).sha1
    got = rois_of(data, 101)
    assert [a["landmark"] for a in got] == list(range(17))
    truth = {k: b for _, k, b in hand_objects()}
    for a in got:
        x0, y0, x1, y1 = truth[a["landmark"]]
        # VOC's 1-based first/last pixel -> continuous [x0 - 1, x1], then x 400/800, y 500/1000
        assert a["bbox"] == pytest.approx(
            [(x0 - 1) / 2, (y0 - 1) / 2, (x1 - x0 + 1) / 2, (y1 - y0 + 1) / 2]
        )
        assert a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3], abs=1e-3)
        assert a["roi_source"] == "drawn" and a["iscrowd"] == 0
    assert {tuple(a["bbox"][2:]) for a in got} == {
        (22.0, 18.0),
        (17.0, 15.0),
        (18.0, 15.0),
        (15.0, 12.0),
        (100.0, 65.0),
        (45.0, 25.0),
        (30.0, 22.5),
    }
    assert all(not im["has_keypoints"] for im in data["images"])


def test_drawn_boxes_replace_keypoint_boxes(split):
    entries = {
        r: {"width": IMAGE[0], "height": IMAGE[1], "keypoints": keypoints_for(*IMAGE)}
        for r in ("101", "102")
    }
    kp = bonet_json(split["root"] / "kp.json", entries)
    (split["rois"] / "102.xml").unlink()
    rep = convert(split, keypoints=kp, strict=True)
    data = json.loads(split["out"].read_text())
    assert rep.num_with_keypoints == 2 and rep.num_with_drawn_rois == 1
    assert {a.get("roi_source") for a in rois_of(data, 101)} == {"drawn"}
    assert [a.get("roi_source") for a in rois_of(data, 102)] == [None] * 17  # keypoint squares
    assert max(a["bbox"][2] for a in rois_of(data, 102)) == 62.5  # 64 px at 512 -> 500


def test_films_of_another_split_are_a_note(split):
    write_png(split["images"] / "103.png", *IMAGE)
    write_voc(split["rois"], "103", hand_objects())
    rep = convert(split, strict=True)  # a note never raises
    [note] = rep.issues
    assert (note.file, note.row, note.field, note.action) == ("103.xml", 0, "filename", "note")
    assert rep.num_with_drawn_rois == 2


# --- bad input -----------------------------------------------------------------------------------


def _objs_with(row: int, **changes):
    """The hand's objects with ``changes`` to object ``row`` (1-based): cls, or box coordinates
    by index (x0, y0, x1, y1)."""
    objs = [list(o) for o in hand_objects()]
    box = list(objs[row - 1][2])
    for key, value in changes.items():
        if key == "cls":
            objs[row - 1][0] = value
        else:
            box["x0 y0 x1 y1".split().index(key)] = value
    objs[row - 1][2] = tuple(box)
    return [tuple(o) for o in objs]


def _rewrite(env, objs=None, **kw):
    write_voc(env["rois"], "102", objs if objs is not None else hand_objects(), **kw)


def _degenerate_forearm(env):
    objs = hand_objects()
    radius = objs[1][2]
    objs[2] = ("Ulna", objs[2][1], (radius[0], radius[1] + 60, radius[2], radius[3] + 60))
    _rewrite(env, objs)


# name: (mutate(env), file, row, field, reason pattern, action)
BAD_CASES = {
    "bad_xml": (
        lambda e: (e["rois"] / "102.xml").write_text(voc_text(hand_objects())[:300]),
        "102.xml", 0, "-", "not well-formed XML", ACTION_ROIS_IGNORED,
    ),
    "unknown_class": (
        lambda e: _rewrite(e, _objs_with(5, cls="Metacarpal")),
        "102.xml", 5, "name", "unknown class 'Metacarpal'; expected one of DIP, PIP",
        ACTION_ROIS_IGNORED,
    ),
    "box_outside_the_frame": (
        lambda e: _rewrite(e, _objs_with(3, x1=801)),
        "102.xml", 3, "bndbox/xmax", "Ulna box: xmax 801 is outside the 800x1000 frame",
        ACTION_ROIS_IGNORED,
    ),
    "negative_coordinate": (
        lambda e: _rewrite(e, _objs_with(1, y0=-4)),
        "102.xml", 1, "bndbox/ymin", "ymin -4 is outside the 800x1000 frame", ACTION_ROIS_IGNORED,
    ),
    "coordinate_not_a_number": (
        lambda e: _rewrite(e, _objs_with(2, y0="abc")),
        "102.xml", 2, "bndbox/ymin", "Radius box: value 'abc' is not a number", ACTION_ROIS_IGNORED,
    ),
    "empty_box": (
        lambda e: _rewrite(e, _objs_with(4, x1=100)),
        "102.xml", 4, "bndbox/xmax", r"MCP box: xmax 100 < xmin \d+", ACTION_ROIS_IGNORED,
    ),
    "sixteen_boxes": (
        lambda e: _rewrite(e, hand_objects()[:-1]),
        "102.xml", 0, "object", r"16 boxes \(3 DIP\); expected 17: 4 DIP, 5 PIP, 5 MCP",
        ACTION_ROIS_IGNORED,
    ),
    "eighteen_boxes": (
        lambda e: _rewrite(e, hand_objects() + hand_objects()[:1]),
        "102.xml", 0, "object", r"18 boxes \(2 Wrist\)", ACTION_ROIS_IGNORED,
    ),
    "size_missing": (
        lambda e: (e["rois"] / "102.xml").write_text(
            re.sub("<width>800</width>", "", voc_text(hand_objects(), stem="102"))
        ),
        "102.xml", 0, "size/width", "missing", ACTION_ROIS_IGNORED,
    ),
    "frame_of_another_aspect_ratio": (
        lambda e: write_png(e["images"] / "102.png", 400, 400),
        "102.xml", 0, "size", r"the frame 800x1000 and the image 'imgs/102.png' \(400x400\) differ",
        ACTION_ROIS_IGNORED,
    ),
    "filename_of_another_image": (
        lambda e: _rewrite(e, filename="2316.png"),
        "102.xml", 0, "filename", "names image '2316.png', but the file is 102.xml",
        ACTION_ROIS_IGNORED,
    ),
    "thumb_side_undecidable": (
        _degenerate_forearm,
        "102.xml", 2, "bndbox", r"Radius and Ulna box centres are [\d.]+ px apart across the",
        ACTION_ROIS_IGNORED,
    ),
    "film_with_no_image": (
        lambda e: write_voc(e["rois"], "103", hand_objects()),
        "103.xml", 0, "filename", r"film 103 has no image: 'imgs/103.png' not found",
        ACTION_ROIS_IGNORED,
    ),
    "file_name_not_an_id": (
        lambda e: write_voc(e["rois"], "scan_7", hand_objects(), filename=None),
        "scan_7.xml", 0, "filename", "is not '<RSNA id>.xml'", ACTION_ROIS_IGNORED,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_roi_file_report_line_and_strict_error(split, case):
    mutate, file, row, fieldname, pattern, action = BAD_CASES[case]
    mutate(split)

    rep = convert(split)
    with open(rep.report_path, newline="") as f:
        lines = list(csv.DictReader(f))
    hits = [
        r
        for r in lines
        if (r["file"], r["row"], r["field"], r["action"]) == (file, str(row), fieldname, action)
        and re.search(pattern, r["reason"])
    ]
    assert hits, lines
    data = json.loads(split["out"].read_text())
    assert [im["id"] for im in data["images"]] == [101, 102]  # the film is kept, its boxes not
    assert len(rois_of(data, 101)) == 17
    assert len(rois_of(data, 102)) == (0 if file == "102.xml" else 17)

    split["out"].unlink()
    Path(rep.report_path).unlink()
    with pytest.raises(RSNAFormatError) as e:
        convert(split, strict=True)
    assert (e.value.file, e.value.row, e.value.field) == (file, row, fieldname)
    assert re.search(pattern, str(e.value))
    assert not split["out"].exists() and not Path(rep.report_path).exists()


def test_a_film_whose_image_is_missing_reports_its_boxes_too(split):
    (split["images"] / "102.png").unlink()
    rep = convert(split)
    got = {(b.file, b.row, b.field, b.action) for b in rep.issues}
    assert got == {
        ("labels.csv", 2, "id", ACTION_IMAGE_SKIPPED),
        ("102.xml", 0, "filename", ACTION_ROIS_IGNORED),
    }
    assert "film 102 has no usable image (see labels.csv row 2)" in str(rep.issues[-1])


def test_a_folder_without_roi_files_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "LICENSE").write_text("MIT")
    with pytest.raises(RSNAFormatError, match="no <id>.xml ROI box file"):
        read_roi_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="ROI box folder not found"):
        read_roi_folder(tmp_path / "absent")


def test_cli_rois(split, capsys):
    args = ["--labels", str(split["labels"]), "--images", str(split["images"])]
    rc = cli_main([*args, "--rois", str(split["rois"]), "--output", str(split["out"]), "--quiet"])
    assert rc == 0 and "34 ROI boxes (2 films drawn)" in capsys.readouterr().out
    rc = cli_main([*args, "--rois", "absent", "--output", str(split["out"]), "--quiet"])
    assert rc == 1 and capsys.readouterr().err == "error: absent: ROI folder not found\n"


# --- the release's own files ---------------------------------------------------------------------

REAL_ROIS = RSNA_REAL / "ossification_rois"


def shortest_pairing(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[int, ...]:
    """The permutation p pairing a[i] with b[p[i]] at the least total distance."""
    return min(
        itertools.permutations(range(len(b))),
        key=lambda p: sum(np.linalg.norm(a[i] - b[j]) for i, j in enumerate(p)),
    )


@pytest.mark.rsna_sample
def test_the_released_roi_files_convert_and_chain_along_each_finger(tmp_path):
    if not REAL_ROIS.is_dir():
        pytest.skip("no ossification ROI boxes beside the checkout")
    folder = read_roi_folder(REAL_ROIS, strict=True)
    assert len(folder.films) == 29
    digits = ("thumb", "index", "middle", "ring", "little")
    for film in folder.films.values():
        assert [k for k, _, _ in film.boxes] == list(range(17))
        centre = {CANONICAL_17[k]: np.add(b[:2], b[2:]) / 2 for k, _, b in film.boxes}
        dip = [centre[f"{d}_dip"] for d in digits[1:]]
        pip = [centre["thumb_ip"]] + [centre[f"{d}_pip"] for d in digits[1:]]
        mcp = [centre[f"{d}_mcp"] for d in digits]
        # joined digit by digit, the joints make the shortest chains of all pairings
        assert shortest_pairing(dip, pip[1:]) == (0, 1, 2, 3), film.file
        assert shortest_pairing(pip, mcp) == (0, 1, 2, 3, 4), film.file
    with open(RSNA_REAL / "boneage-training-dataset.csv", newline="") as f:
        rows = [r for r in csv.reader(f)]
    labels = write_labels(
        tmp_path / "labels.csv", rows[0], [r for r in rows[1:] if r[0] in folder.films]
    )
    rep = convert_split(
        labels,
        RSNA_REAL / "images",
        tmp_path / "train.json",
        rois=folder,
        progress=False,
        strict=True,
    )
    assert (rep.num_images, rep.num_rois, rep.num_with_drawn_rois) == (29, 29 * 17, 29)
    data = json.loads((tmp_path / "train.json").read_text())
    size = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        assert x >= 0 and y >= 0 and x + w <= size[a["image_id"]][0] + 1e-6
        assert y + h <= size[a["image_id"]][1] + 1e-6 and w > 0 and h > 0
