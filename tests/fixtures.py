"""Shared test data and paths: a tiny converted dataset in the COCO format of docs/data.md."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
# Real RSNA films beside the checkout (never in it); the tests that use them skip without them.
SHARED = REPO.parent / "shared"
RSNA_SAMPLE = SHARED / "rsna_sample"
RSNA_REAL = SHARED / "rsna_real"


def write_tiny_dataset(root: Path, num_images: int = 24, seed: int = 0, size=(96, 80)) -> Path:
    """Images whose bright disk grows with age (a cue a small CNN learns fast), one hand box with
    17 keypoints (mask-free), and ROI boxes. Returns the json path."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    h, w = size
    images, anns = [], []
    for i in range(num_images):
        age = float(rng.uniform(12, 216))
        male = bool(rng.integers(0, 2))
        img = np.full((h, w), 30, np.uint8)
        cv2.circle(img, (w // 2, h // 2), int(4 + age / 12), 220, -1)
        name = f"{1000 + i}.png"
        cv2.imwrite(str(root / "images" / name), img)
        images.append(
            {
                "id": 1000 + i,
                "file_name": f"images/{name}",
                "width": w,
                "height": h,
                "rsna_id": str(1000 + i),
                "boneage": age,
                "male": male,
                "has_keypoints": True,
            }
        )
        kps = []
        for k in range(17):
            kps += [float(10 + 3 * k), float(20 + 2 * k), 2]
        anns.append(
            {
                "id": len(anns) + 1,
                "image_id": 1000 + i,
                "category_id": 1,
                "bbox": [5.0, 5.0, w - 10.0, h - 10.0],
                "area": (w - 10.0) * (h - 10.0),
                "iscrowd": 0,
                "keypoints": kps,
                "num_keypoints": 17,
            }
        )
        side = 64 * max(h, w) / 512
        for k in range(17):
            x, y = kps[3 * k] + 0.5, kps[3 * k + 1] + 0.5
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": 1000 + i,
                    "category_id": 2,
                    "bbox": [x - side / 2, y - side / 2, side, side],
                    "area": side * side,
                    "iscrowd": 0,
                    "landmark": k,
                }
            )
    data = {
        "info": {"split": "train", "roi_size_px": 64, "roi_reference_long_side": 512},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [
            {
                "id": 1,
                "name": "hand",
                "supercategory": "hand",
                "keypoints": [f"kp_{k}" for k in range(17)],
                "skeleton": [],
            },
            {"id": 2, "name": "anatomical_roi", "supercategory": "hand"},
        ],
    }
    path = root / "tiny.json"
    path.write_text(json.dumps(data))
    return path
