"""The raw RSNA layout on disk (``docs/data.md``): file names, ids, label files, keypoint jsons.

Every writer is atomic and deterministic: equal content gives equal bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..io.atomic import atomic_open, atomic_write_json
from ..schema import CANONICAL_17, HAND_CATEGORY_ID, coco_categories

__all__ = [
    "FIRST_ID",
    "MASK_DIR",
    "SPLIT_FILES",
    "TEST_GROUND_TRUTH_XLSX",
    "TRUTH_JSON",
    "split_ids",
    "write_annotations",
    "write_png",
]

# Raw layout file names (docs/data.md): split -> (csv, image folder, keypoint json).
SPLIT_FILES: dict[str, tuple[str, str, str]] = {
    "train": (
        "boneage-training-dataset.csv",
        "boneage-training-dataset",
        "RSNA_Anatomical_ROIs_Training.json",
    ),
    "val": (
        "Validation Dataset.csv",
        "boneage-validation-dataset",
        "RSNA_Anatomical_ROIs_Validation.json",
    ),
    "test": (
        "boneage-test-dataset.csv",
        "boneage-test-dataset",
        "RSNA_Anatomical_ROIs_Test.json",
    ),
}
TEST_GROUND_TRUTH_XLSX = "Bone age ground truth.xlsx"
TRUTH_JSON = "phantom_truth.json"
MASK_DIR = "masks"
FIRST_ID = 1000  # ids: train from 1000, then validation, then test (distinct, like RSNA)

_XLSX_FIXED_TIME = "2000-01-01T00:00:00Z"


def split_ids(num_train: int, num_val: int, num_test: int) -> dict[str, list[int]]:
    """Integer image ids per split: train from 1000, then validation, then test (all distinct)."""
    out: dict[str, list[int]] = {}
    start = FIRST_ID
    for split, n in (("train", num_train), ("val", num_val), ("test", num_test)):
        out[split] = list(range(start, start + n))
        start += n
    return out


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_png(path: Path, img: np.ndarray, compression: int, huffman_only: bool = False) -> None:
    """Write ``img`` as PNG; Huffman-only coding suits noisy radiographs (faster, smaller)."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]
    if huffman_only:
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
    ok, buf = cv2.imencode(".png", img, params)
    if not ok:
        raise OSError("cv2.imencode failed to encode a PNG")
    _write_bytes(path, buf.tobytes())


# ----------------------------------------------------------------------------------------------
# label files with RSNA's published headers and encodings


def _true_false(rec: dict[str, Any]) -> str:
    return "True" if rec["male"] else "False"


def _sex_letter(rec: dict[str, Any]) -> str:
    return "M" if rec["male"] else "F"


def _int_months(rec: dict[str, Any]) -> str:
    return str(int(round(rec["boneage"])))


_Row = Callable[[int, dict[str, Any]], list[str]]
# split -> (header, row of one image); training and validation ages in integer months
_LABEL_COLUMNS: dict[str, tuple[list[str], _Row]] = {
    "train": (["id", "boneage", "male"], lambda i, r: [str(i), _int_months(r), _true_false(r)]),
    "val": (
        ["Image ID", "male", "Bone Age (months)"],
        lambda i, r: [str(i), _true_false(r), _int_months(r)],
    ),
    "test": (["Case ID", "Sex"], lambda i, r: [str(i), _sex_letter(r)]),
}


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(row) + "\n")


def _deterministic_xlsx(df_bytes: bytes) -> bytes:
    """Re-zip an openpyxl workbook with fixed timestamps so equal content gives equal bytes."""
    src = zipfile.ZipFile(io.BytesIO(df_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(
                    r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                    lambda m: m.group(1) + _XLSX_FIXED_TIME + m.group(3),
                    text,
                )
                data = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data)
    return out.getvalue()


def _write_ground_truth_xlsx(path: Path, test: dict[int, dict[str, Any]]) -> None:
    """The test labels (one-decimal months) as RSNA's ground-truth workbook."""
    import pandas as pd

    rows = [(i, _sex_letter(r), round(r["boneage"], 1)) for i, r in test.items()]
    df = pd.DataFrame(rows, columns=["Case ID", "Sex", "Ground truth bone age (months)"])
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        df.to_excel(writer, index=False, sheet_name="Sheet1")
    _write_bytes(path, _deterministic_xlsx(buf.getvalue()))


# ----------------------------------------------------------------------------------------------
# keypoints and truth


def _keypoint_json(records: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """BoNet-style COCO keypoint json of one split (primary hand only, COCO convention)."""
    images, annos = [], []
    for k, (image_id, rec) in enumerate(records.items(), start=1):
        images.append(
            {
                "id": image_id,
                "file_name": f"{image_id}.png",
                "width": rec["width"],
                "height": rec["height"],
            }
        )
        hand = rec["hands"][0]
        kps: list[float] = []
        for x, y in hand["keypoints"]:
            kps += [round(x - 0.5, 3), round(y - 0.5, 3), 2]
        box = hand["bbox"]
        annos.append(
            {
                "id": k,
                "image_id": image_id,
                "category_id": HAND_CATEGORY_ID,
                "bbox": box,
                "area": float(box[2] * box[3]),
                "iscrowd": 0,
                "keypoints": kps,
                "num_keypoints": len(hand["keypoints"]),
            }
        )
    return {
        "images": images,
        "annotations": annos,
        "categories": coco_categories(CANONICAL_17, with_roi=False),
    }


def write_annotations(root: Path, seed: int, records: dict[int, dict[str, Any]]) -> None:
    """Write every label and annotation file for ``records`` (image id -> truth record, in id
    order; each names its ``split``): the CSVs, the test workbook, the keypoint jsons and
    ``phantom_truth.json``."""
    by_split: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in SPLIT_FILES}
    for image_id, rec in records.items():
        by_split[rec["split"]][image_id] = rec
    for split, (header, row) in _LABEL_COLUMNS.items():
        rows = [row(i, r) for i, r in by_split[split].items()]
        _write_csv(root / SPLIT_FILES[split][0], header, rows)
    _write_ground_truth_xlsx(root / TEST_GROUND_TRUTH_XLSX, by_split["test"])
    for split, recs in by_split.items():
        atomic_write_json(root / SPLIT_FILES[split][2], _keypoint_json(recs))
    atomic_write_json(
        root / TRUTH_JSON,
        {
            "seed": int(seed),
            "num_keypoints": len(CANONICAL_17),
            "keypoint_names": list(CANONICAL_17),
            "images": {str(i): rec for i, rec in records.items()},
        },
    )
