"""The raw RSNA layout of docs/data.md: which label file, image folder and keypoint json make
up each split under one root folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RAW_SPLITS", "RawSplit", "find_raw_splits"]


@dataclass(frozen=True)
class RawSplit:
    """One split found under an RSNA root: its label file, image folder and keypoint json."""

    name: str
    labels: Path
    images: Path
    keypoints: Path | None
    require_age: bool


# Default file names of the raw layout, per split; the first label file that exists wins (the
# test ground truth before the label-less test CSV).
RAW_SPLITS: dict[str, dict[str, Any]] = {
    "train": {
        "labels": ("boneage-training-dataset.csv",),
        "images": "boneage-training-dataset",
        "keypoints": "RSNA_Anatomical_ROIs_Training.json",
    },
    "val": {
        "labels": ("Validation Dataset.csv",),
        "images": "boneage-validation-dataset",
        "keypoints": "RSNA_Anatomical_ROIs_Validation.json",
    },
    "test": {
        "labels": (
            "Bone age ground truth.xlsx",
            "Bone age ground truth.csv",
            "boneage-test-dataset.csv",
        ),
        "images": "boneage-test-dataset",
        "keypoints": "RSNA_Anatomical_ROIs_Test.json",
    },
}


def find_raw_splits(root: str | os.PathLike) -> list[RawSplit]:
    """The splits present under ``root`` in the raw layout (a split exists when its label file
    does); image folders are not checked here. Ages are required except for the test CSV."""
    root = Path(root)
    found = []
    for name, spec in RAW_SPLITS.items():
        labels = next((root / f for f in spec["labels"] if (root / f).is_file()), None)
        if labels is None:
            continue
        kp = root / spec["keypoints"]
        found.append(
            RawSplit(
                name=name,
                labels=labels,
                images=root / spec["images"],
                keypoints=kp if kp.is_file() else None,
                require_age=labels.name != "boneage-test-dataset.csv",
            )
        )
    return found
