"""Drawing bone-age ground truth and predictions with Detectron2's ``Visualizer``."""

from __future__ import annotations

import numpy as np
from detectron2.data import MetadataCatalog
from detectron2.utils.visualizer import ColorMode, Visualizer

from .data.image_io import read_radiograph
from .data.landmarks import default_landmark_names

__all__ = ["draw_ground_truth", "age_caption"]

ROI_COLOR = (1.0, 0.75, 0.1)
KEYPOINT_COLOR = (0.2, 1.0, 0.4)


def age_caption(boneage_months: float | None, male: bool, prefix: str = "") -> str:
    """``'M, 127.0 mo (10.6 y)'``-style caption; ``'?'`` for an unlabelled image."""
    sex = "M" if male else "F"
    if boneage_months is None:
        return f"{prefix}{sex}, age ?"
    return f"{prefix}{sex}, {boneage_months:.1f} mo ({boneage_months / 12:.1f} y)"


def draw_ground_truth(record: dict, metadata=None, scale: float = 1.0) -> np.ndarray:
    """An RGB image of one dataset dict: hand masks and boxes, keypoints with landmark names,
    anatomical ROI boxes (with landmark index), and the age and sex.

    ``record`` is a dict from ``DatasetCatalog.get(name)`` (docs/data.md); ``metadata`` its
    ``MetadataCatalog`` entry (for keypoint names), or None for the default names.
    """
    gray = read_radiograph(record["file_name"])
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    if metadata is None:
        metadata = MetadataCatalog.get("__boneage_unnamed")
        if not hasattr(metadata, "thing_classes"):
            metadata.thing_classes = ["hand"]
    meta = metadata
    vis = Visualizer(rgb, meta, scale=scale, instance_mode=ColorMode.IMAGE)
    hands = record.get("annotations", [])
    # draw_dataset_dict reads the hands only: ROI boxes are drawn separately below (PITFALLS 2).
    no_kps = [{k: v for k, v in a.items() if k != "keypoints"} for a in hands]
    vis.draw_dataset_dict({"annotations": no_kps})  # keypoints drawn with names below
    font = max(8, int(max(gray.shape) / 80))
    names = None
    for a in hands:
        kps = a.get("keypoints")
        if not kps:
            continue
        kps = np.asarray(kps, dtype=float).reshape(-1, 3)
        names = names or list(
            getattr(meta, "keypoint_names", None) or default_landmark_names(len(kps))
        )
        for (x, y, v), name in zip(kps, names):
            if v > 0:
                vis.draw_circle((x, y), color=KEYPOINT_COLOR, radius=max(2, font // 3))
                vis.draw_text(
                    name,
                    (x + font // 2, y),
                    color=KEYPOINT_COLOR,
                    horizontal_alignment="left",
                    font_size=font * 0.7,
                )
    for roi in record.get("roi_annotations", []):
        x, y, w, h = roi["bbox"]
        vis.draw_box((x, y, x + w, y + h), edge_color=ROI_COLOR, alpha=0.8)
    caption = age_caption(record.get("boneage"), bool(record.get("male")))
    vis.draw_text(
        caption, (8, 8), color=(1.0, 1.0, 1.0), horizontal_alignment="left", font_size=font * 1.3
    )
    return vis.get_output().get_image()
