"""Loading converted COCO jsons into Detectron2 dataset dicts and registering them by name.

Each converted split ``S`` is registered three times (see docs/data.md):

- ``S``: full records (hand ``annotations`` + ``roi_annotations``, ``boneage``, ``male``) for
  training and bone-age evaluation;
- ``S_hand`` / ``S_roi``: task views whose ``annotations`` hold only hands / only ROI boxes, each
  with its own single-category ``json_file`` so ``COCOEvaluator`` scores one task at a time.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from ..io.atomic import atomic_open
from ..schema import (
    HAND_CATEGORY,
    HAND_CATEGORY_ID,
    ROI_CATEGORY,
    ROI_CATEGORY_ID,
    ROI_REFERENCE_LONG_SIDE,
    ROI_SIZE_PX,
    SPLITS,
    default_landmark_names,
    roi_side_px,
)

__all__ = [
    "HAND_CATEGORY_ID",
    "ROI_CATEGORY_ID",
    "TASK_VIEWS",
    "load_boneage_json",
    "register_boneage_split",
    "register_boneage_root",
    "register_all_boneage",
    "prepare_task_view",
    "default_datasets_root",
]

logger = logging.getLogger(__name__)

TASK_VIEWS = {"hand": (HAND_CATEGORY_ID, HAND_CATEGORY), "roi": (ROI_CATEGORY_ID, ROI_CATEGORY)}
# Built-in names: <prefix>_<split> -> <datasets root>/<folder>/coco/<split>.json. "rsna_real" is a
# labelled subset of RSNA training films split into train/val (docs/real_films.md).
BUILTIN_ROOTS = {
    "phantom_boneage": "phantom",
    "rsna_boneage": "rsna",
    "rsna_real_boneage": "rsna_real",
}


def default_datasets_root() -> Path:
    """``$BONEAGE_DATASETS`` if set, else ``datasets/`` in the current directory."""
    return Path(os.environ.get("BONEAGE_DATASETS", "datasets"))


def _read_json(json_file: str | os.PathLike) -> dict:
    if not os.path.isfile(json_file):
        raise FileNotFoundError(
            f"{json_file}: converted dataset json not found; create it with "
            "tools/convert_rsna.py (or tools/make_phantom.py + convert_rsna.py for phantom data)"
        )
    with open(json_file, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{json_file}: not valid json ({e})") from None


def _keypoints_to_memory(kpts: list[float]) -> list[float]:
    """COCO pixel-index keypoints -> Detectron2 continuous coordinates (+0.5 on labelled x, y)."""
    out = list(kpts)
    for i in range(0, len(out), 3):
        if out[i + 2] > 0:
            out[i] += 0.5
            out[i + 1] += 0.5
    return out


def load_boneage_json(json_file: str | os.PathLike, image_root: str | None = None) -> list[dict]:
    """Read a converted split into Detectron2 dataset dicts (docs/data.md, "Dataset dicts").

    Unlike ``load_coco_json`` this keeps ``boneage``, ``male`` and ``has_keypoints`` on each
    record, keeps ROI boxes out of ``annotations`` (in ``roi_annotations``, with ``landmark`` and,
    for hand-drawn boxes, ``roi_source``), and adds ``roi_size`` (the keypoint-derived ROI side
    in original pixels).
    """
    data = _read_json(json_file)
    root = Path(image_root) if image_root else Path(json_file).resolve().parent
    info = data.get("info", {})
    roi_px = float(info.get("roi_size_px", ROI_SIZE_PX))
    roi_ref = float(info.get("roi_reference_long_side", ROI_REFERENCE_LONG_SIDE))
    by_image: dict[int, list[dict]] = {}
    for ann in data.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)

    records = []
    for img in data["images"]:
        hands, rois = [], []
        for ann in by_image.get(img["id"], []):
            base = {"bbox": ann["bbox"], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}
            if ann["category_id"] == HAND_CATEGORY_ID:
                hand = {**base, "iscrowd": ann.get("iscrowd", 0)}
                if ann.get("segmentation"):
                    hand["segmentation"] = ann["segmentation"]
                if "keypoints" in ann:
                    hand["keypoints"] = _keypoints_to_memory(ann["keypoints"])
                hands.append(hand)
            elif ann["category_id"] == ROI_CATEGORY_ID:
                roi = {**base, "landmark": int(ann["landmark"])}
                if "roi_source" in ann:  # "drawn": a hand-drawn box, kept as it is
                    roi["roi_source"] = ann["roi_source"]
                rois.append(roi)
        rois.sort(key=lambda r: r["landmark"])
        age = img.get("boneage")
        records.append(
            {
                "file_name": os.path.normpath(root / img["file_name"]),
                "image_id": img["id"],
                "height": img["height"],
                "width": img["width"],
                "boneage": None if age is None else float(age),
                "male": bool(img["male"]),
                "has_keypoints": bool(img.get("has_keypoints", False)),
                "roi_size": roi_side_px(img["height"], img["width"], roi_px, roi_ref),
                "annotations": hands,
                "roi_annotations": rois,
            }
        )
    return records


def _task_view_path(json_file: str | os.PathLike, view: str) -> Path:
    p = Path(json_file)
    return p.with_name(f"{p.stem}.{view}-view.json")


def prepare_task_view(json_file: str | os.PathLike, view: str) -> Path:
    """Write (if changed) the single-category json of ``view`` beside ``json_file``; return it.

    Derived from the split json every time it is asked for, so it can never go stale when the
    data is regenerated; rewritten (atomically) only when its content changes.
    """
    if view not in TASK_VIEWS:
        raise KeyError(f"unknown task view {view!r}; expected one of {sorted(TASK_VIEWS)}")
    cat_id, _ = TASK_VIEWS[view]
    data = _read_json(json_file)
    derived = {
        "info": {**data.get("info", {}), "view": view},
        "licenses": data.get("licenses", []),
        "images": data["images"],
        "annotations": [a for a in data.get("annotations", []) if a["category_id"] == cat_id],
        "categories": [c for c in data["categories"] if c["id"] == cat_id],
    }
    text = json.dumps(derived, ensure_ascii=False)
    out = _task_view_path(json_file, view)
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        with atomic_open(out, "w", encoding="utf-8") as f:
            f.write(text)
    return out


def _view_records(json_file: str, image_root: str | None, view: str) -> list[dict]:
    prepare_task_view(json_file, view)
    records = load_boneage_json(json_file, image_root)
    for r in records:
        r["annotations"] = r.pop("roi_annotations") if view == "roi" else r["annotations"]
        r.pop("roi_annotations", None)
    return records


def _set_keypoint_metadata(name: str, json_file: str) -> None:
    """Fill keypoint names/flip map from the json's hand category on first load."""
    meta = MetadataCatalog.get(name)
    if hasattr(meta, "keypoint_names"):
        return
    cats = {c["id"]: c for c in _read_json(json_file)["categories"]}
    names = cats.get(HAND_CATEGORY_ID, {}).get("keypoints") or default_landmark_names(17)
    # Hands have no left/right landmark pairs: a flipped hand keeps its landmark identities.
    meta.set(keypoint_names=list(names), keypoint_flip_map=[])


def register_boneage_split(name: str, json_file: str | os.PathLike, image_root=None) -> None:
    """Register ``name``, ``name_hand`` and ``name_roi`` for one converted split (lazy loading)."""
    json_file = os.fspath(json_file)
    image_root = os.fspath(image_root) if image_root else None

    def load_full() -> list[dict]:
        _set_keypoint_metadata(name, json_file)
        return load_boneage_json(json_file, image_root)

    DatasetCatalog.register(name, load_full)
    MetadataCatalog.get(name).set(
        thing_classes=[HAND_CATEGORY], evaluator_type="boneage", boneage_json=json_file
    )
    for view, (cat_id, cls_name) in TASK_VIEWS.items():
        view_name = f"{name}_{view}"
        DatasetCatalog.register(view_name, lambda v=view: _view_records(json_file, image_root, v))
        MetadataCatalog.get(view_name).set(
            thing_classes=[cls_name],
            thing_dataset_id_to_contiguous_id={cat_id: 0},
            json_file=os.fspath(_task_view_path(json_file, view)),
            boneage_json=json_file,
            task_view=view,
            evaluator_type="coco",
        )


def register_boneage_root(coco_dir: str | os.PathLike, prefix: str) -> list[str]:
    """Register ``<prefix>_<split>`` for every ``<split>.json`` of SPLITS found in ``coco_dir``."""
    names = []
    for split in SPLITS:
        json_file = Path(coco_dir) / f"{split}.json"
        name = f"{prefix}_{split}"
        if name in DatasetCatalog.list():
            continue
        register_boneage_split(name, json_file)
        names.append(name)
    return names


def register_all_boneage(datasets_root: str | os.PathLike | None = None) -> list[str]:
    """Register the built-in names (``phantom_boneage_{train,val,test}``, ``rsna_boneage_*``).

    Paths are recorded, not read: a name can be registered before its data exists, and loading
    it then fails with a message saying how to create it.
    """
    root = Path(datasets_root) if datasets_root else default_datasets_root()
    names = []
    for prefix, folder in BUILTIN_ROOTS.items():
        names += register_boneage_root(root / folder / "coco", prefix)
    return names
