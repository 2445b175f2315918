"""Hand-drawn ossification ROI boxes: one Pascal VOC XML per film (the format of the release of
Koitka et al. 2018, MIT licence).

``<id>.xml`` gives the original film's frame (``<size>``) and 17 ``<object>`` boxes named DIP (4),
PIP (5, the thumb's IP among them), MCP (5), Radius, Ulna and Wrist (any case).
:func:`read_roi_folder` reads and checks every ``*.xml`` of a folder and gives each box its
canonical landmark index (the digit from :mod:`.roi_order`); :func:`drawn_roi_annotations`
scales one film's boxes to the converted image.

VOC coordinates are 1-based pixel indices of a box's first and last pixel: the box is
``[xmin - 1, ymin - 1, xmax, ymax]`` in continuous pixels (as Detectron2's VOC loader reads it;
``xmin = 0`` is read as the first pixel). Problems are :class:`BadRow` items on the XML file:
``row`` is the 1-based position of the ``<object>`` (0 = the file itself), ``field`` the
element's path (``name``, ``bndbox/xmax``, ``size/width``). A film with any problem keeps no
drawn box (action ``ACTION_ROIS_IGNORED``).
"""

from __future__ import annotations

import hashlib
import math
import os
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import sha1_file
from ..schema import CANONICAL_17, ROI_CATEGORY_ID
from .geometry import rounded
from .input_problems import ACTION_ROIS_IGNORED, BadRow, ProblemLog, RSNAFormatError
from .label_files import parse_id
from .roi_order import HandOrientationError, thumbward_angles

__all__ = [
    "ASPECT_TOLERANCE",
    "VOC_CLASSES",
    "DrawnROIs",
    "ROIFolder",
    "drawn_roi_annotations",
    "read_roi_folder",
]

# Each class's landmarks (CANONICAL_17 names), in the order of its boxes from thumb to little
# finger; the thumb has no DIP and its IP joint is a PIP box.
VOC_CLASSES: dict[str, tuple[str, ...]] = {
    "DIP": ("index_dip", "middle_dip", "ring_dip", "little_dip"),
    "PIP": ("thumb_ip", "index_pip", "middle_pip", "ring_pip", "little_pip"),
    "MCP": ("thumb_mcp", "index_mcp", "middle_mcp", "ring_mcp", "little_mcp"),
    "Radius": ("radius",),
    "Ulna": ("ulna",),
    "Wrist": ("carpal",),
}
_FINGER_CLASSES = ("MCP", "PIP", "DIP")
_BY_LOWER = {name.lower(): name for name in VOC_CLASSES}
_EXPECTED = ", ".join(f"{len(v)} {k}" for k, v in VOC_CLASSES.items())

# A film's <size> and its converted image may differ in aspect ratio by this much (rounding of a
# resized copy); more means the boxes belong to another frame.
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class DrawnROIs:
    """One film's checked boxes: ``file`` (the XML's name), ``frame`` (W, H) of its ``<size>``,
    ``boxes``: ``(landmark index, <object> position, (x0, y0, x1, y1))`` in continuous pixels of
    the frame, sorted by landmark."""

    rsna_id: str
    file: str
    frame: tuple[int, int]
    boxes: tuple[tuple[int, int, tuple[float, float, float, float]], ...]


@dataclass
class ROIFolder:
    """The checked films of a folder of ROI box files, by RSNA id; ``sha1`` of the XML files'
    names and bytes (the json's ``info.source``) and the problems found."""

    path: str
    name: str
    films: dict[str, DrawnROIs] = field(default_factory=dict)
    sha1: str = ""
    issues: list[BadRow] = field(default_factory=list)


def _text(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None or found.text is None else found.text.strip()


def _number(node: ET.Element, path: str) -> tuple[float | None, str]:
    """The finite number at ``path``, or (None, why)."""
    text = _text(node, path)
    if not text:
        return None, "missing"
    try:
        value = float(text)
    except ValueError:
        return None, f"value {text!r} is not a number"
    return (value, "") if math.isfinite(value) else (None, f"value {text!r} is not finite")


def _frame(root: ET.Element, report) -> tuple[int, int] | None:
    """``(width, height)`` of ``<size>``: positive whole numbers."""
    size = []
    for key in ("width", "height"):
        value, why = _number(root, f"size/{key}")
        if value is not None and (value <= 0 or not value.is_integer()):
            why = f"value {value:g} is not a positive whole number of pixels"
        if why:
            report(0, f"size/{key}", why)
            return None
        size.append(int(value))
    return size[0], size[1]


def _object_box(
    obj: ET.Element, row: int, frame: tuple[int, int], report
) -> tuple[str, tuple[float, float, float, float]] | None:
    """``(class, continuous XYXY)`` of one ``<object>``, or None (reported)."""
    name = _text(obj, "name")
    cls = _BY_LOWER.get((name or "").lower())
    if cls is None:
        report(row, "name", f"unknown class {name!r}; expected one of {', '.join(VOC_CLASSES)}")
        return None
    width, height = frame
    limits = {"xmin": (0, width), "ymin": (0, height), "xmax": (1, width), "ymax": (1, height)}
    vals = {}
    for key, (low, high) in limits.items():
        value, why = _number(obj, f"bndbox/{key}")
        if value is not None and not low <= value <= high:
            why = f"{cls} box: {key} {value:g} is outside the {width}x{height} frame"
        if why:
            report(row, f"bndbox/{key}", why if value is not None else f"{cls} box: {why}")
            return None
        vals[key] = value
    for lo, hi in (("xmin", "xmax"), ("ymin", "ymax")):
        if vals[hi] < vals[lo]:
            report(row, f"bndbox/{hi}", f"{cls} box: {hi} {vals[hi]:g} < {lo} {vals[lo]:g}")
            return None
    x0, y0 = max(vals["xmin"] - 1.0, 0.0), max(vals["ymin"] - 1.0, 0.0)
    return cls, (x0, y0, vals["xmax"], vals["ymax"])


def _landmarks(
    objects: list[tuple[int, str, tuple[float, float, float, float]]], report
) -> tuple[tuple[int, int, tuple[float, float, float, float]], ...] | None:
    """Each box's landmark index (the digit by :func:`thumbward_angles`), sorted by landmark."""
    by_class: dict[str, list[tuple[int, tuple[float, float, float, float]]]] = {}
    for row, cls, box in objects:
        by_class.setdefault(cls, []).append((row, box))
    fingers = [(cls, row, box) for cls in _FINGER_CLASSES for row, box in by_class[cls]]
    try:
        angles = thumbward_angles(
            np.array([box for _, _, box in fingers]),
            *(np.array(by_class[c][0][1]) for c in ("Wrist", "Radius", "Ulna")),
        )
    except HandOrientationError as e:
        report(by_class["Radius"][0][0], "bndbox", str(e))
        return None
    order = {(cls, row): angle for (cls, row, _), angle in zip(fingers, angles.tolist())}
    out = []
    for cls, names in VOC_CLASSES.items():
        boxes = sorted(by_class[cls], key=lambda rb: -order.get((cls, rb[0]), 0.0))
        out += [(CANONICAL_17.index(n), row, box) for n, (row, box) in zip(names, boxes)]
    return tuple(sorted(out))


def _read_file(path: Path, rsna_id: str, report) -> DrawnROIs | None:
    """The checked boxes of one XML file, or None (its problems reported)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        report(0, "-", f"not well-formed XML ({e})")
        return None
    if root.tag != "annotation":
        report(0, "annotation", f"root element is <{root.tag}>, not <annotation>")
        return None
    named = _text(root, "filename")
    if named and Path(named).stem != path.stem:
        report(0, "filename", f"names image {named!r}, but the file is {path.name}")
        return None
    frame = _frame(root, report)
    if frame is None:
        return None
    objects, bad = [], False
    for row, obj in enumerate(root.findall("object"), start=1):
        checked = _object_box(obj, row, frame, report)
        bad |= checked is None
        if checked is not None:
            objects.append((row, *checked))
    if bad:
        return None
    counts = Counter(cls for _, cls, _ in objects)
    wrong = [f"{counts[c]} {c}" for c, names in VOC_CLASSES.items() if counts[c] != len(names)]
    if wrong:
        report(
            0,
            "object",
            f"{len(objects)} boxes ({', '.join(wrong)}); expected 17: {_EXPECTED}",
        )
        return None
    boxes = _landmarks(objects, report)
    return None if boxes is None else DrawnROIs(rsna_id, path.name, frame, boxes)


def read_roi_folder(
    folder: str | os.PathLike, *, strict: bool = False, bad_rows: list[BadRow] | None = None
) -> ROIFolder:
    """Read every ``<id>.xml`` of ``folder`` (other files are ignored).

    A file with a problem (not well-formed, a name that is not an RSNA id, a ``<filename>`` of
    another image, a bad ``<size>``, an unknown class, a box that is not numbers, empty or
    outside the frame, a count other than 4 DIP, 5 PIP, 5 MCP, 1 Radius, 1 Ulna, 1 Wrist, or
    Radius and Ulna boxes that do not tell the thumb side) gives no film and is reported
    (``issues``, ``bad_rows``), or raises ``RSNAFormatError`` with ``strict=True``. A missing
    folder, or one without any ``.xml`` file, raises in both modes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: ROI box folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    if not files:
        raise RSNAFormatError(BadRow(folder.name, 0, "-", "no <id>.xml ROI box file"))
    out = ROIFolder(os.fspath(folder), folder.name)
    issues = ProblemLog(strict, out.issues)
    digest = hashlib.sha1()
    for path in files:
        digest.update(f"{path.name}\n{sha1_file(path)}\n".encode())

        def report(row: int, fieldname: str, reason: str, name: str = path.name) -> None:
            issues.add(BadRow(name, row, fieldname, reason, ACTION_ROIS_IGNORED))

        rsna_id, why = parse_id(path.stem)
        if why or rsna_id is None:
            report(0, "filename", f"file name {path.name!r} is not '<RSNA id>.xml'")
            continue
        if rsna_id in out.films:
            first = out.films[rsna_id].file
            report(0, "filename", f"second ROI box file for image {rsna_id} (first: {first})")
            continue
        drawn = _read_file(path, rsna_id, report)
        if drawn is not None:
            out.films[rsna_id] = drawn
    out.sha1 = digest.hexdigest()
    if bad_rows is not None:
        bad_rows.extend(out.issues)
    return out


def drawn_roi_annotations(
    drawn: DrawnROIs, width: int, height: int, image_ref: str
) -> tuple[list[dict[str, Any]], BadRow | None]:
    """The film's ROI annotations (without ids) scaled from its frame to the ``width`` x
    ``height`` image, each with its ``landmark`` and ``roi_source: "drawn"``; or no annotation
    and the problem when the frame and the image differ in aspect ratio."""
    frame_w, frame_h = drawn.frame
    sx, sy = width / frame_w, height / frame_h
    if abs(sx / sy - 1.0) > ASPECT_TOLERANCE:
        reason = (
            f"the frame {frame_w}x{frame_h} and the image '{image_ref}' ({width}x{height}) "
            f"differ in aspect ratio by {abs(sx / sy - 1.0):.1%}"
        )
        return [], BadRow(drawn.file, 0, "size", reason, ACTION_ROIS_IGNORED)
    anns = []
    for landmark, _, (x0, y0, x1, y1) in drawn.boxes:  # inside the frame: never empty
        x0, x1 = min(x0 * sx, width), min(x1 * sx, width)
        y0, y1 = min(y0 * sy, height), min(y1 * sy, height)
        box = [rounded(x0), rounded(y0), rounded(x1 - x0), rounded(y1 - y0)]
        anns.append(
            {
                "category_id": ROI_CATEGORY_ID,
                "bbox": box,
                "area": rounded(box[2] * box[3]),
                "iscrowd": 0,
                "landmark": landmark,
                "roi_source": "drawn",
            }
        )
    return anns, None
