"""Drawing bone-age ground truth and predictions with Detectron2's ``Visualizer``."""

from __future__ import annotations

import numpy as np
from detectron2.data import MetadataCatalog
from detectron2.utils.visualizer import ColorMode, Visualizer

from ..io.radiograph import read_radiograph
from ..schema import default_landmark_names

__all__ = ["draw_ground_truth", "draw_prediction", "age_caption"]

ROI_COLOR = (1.0, 0.75, 0.1)
KEYPOINT_COLOR = (0.2, 1.0, 0.4)
# Hand masks, best score first: bright colours that stand out on any film. Detectron2's random
# instance colours include near-black and greys, which vanish on a dark radiograph.
HAND_COLORS = ((1.0, 0.2, 0.6), (0.1, 0.6, 1.0), (1.0, 0.6, 0.0))


def age_caption(boneage_months: float | None, male: bool, prefix: str = "") -> str:
    """``'M, 127.0 mo (10.6 y)'``-style caption; ``'?'`` for an unlabelled image."""
    sex = "M" if male else "F"
    if boneage_months is None:
        return f"{prefix}{sex}, age ?"
    return f"{prefix}{sex}, {boneage_months:.1f} mo ({boneage_months / 12:.1f} y)"


def _hand_metadata():
    meta = MetadataCatalog.get("__boneage_unnamed")
    if not hasattr(meta, "thing_classes"):
        meta.thing_classes = ["hand"]
    return meta


def draw_prediction(gray: np.ndarray, output: dict, male: bool, scale: float = 1.0) -> np.ndarray:
    """An RGB image of one prediction over its radiograph (uint8 [H, W], original pixels).

    Draws what the model returned: hand masks and boxes with each hand's score and age (Model A),
    or the anatomical ROI boxes with their rank by objectness and, after a colon, the ROI's own
    age in months from the patch head (ALA-Net: the RPN's proposals are
    class-agnostic, so a predicted box has no landmark name; ``visualize_data.py`` draws the
    named ground truth), and the image-level age, sex and flags.
    """
    vis = Visualizer(np.repeat(gray[:, :, None], 3, axis=2), _hand_metadata(), scale=scale)
    font = max(8, int(max(gray.shape) / 80))
    inst = output.get("instances")
    if inst is not None and len(inst):
        inst = inst.to("cpu")
        boxes = inst.pred_boxes.tensor.numpy()
        if inst.has("pred_masks"):  # the hands that got an age (passed the score threshold)
            ages = inst.boneage if inst.has("boneage") else inst.scores.new_full((len(inst),), 0)
            keep = ages.isfinite().nonzero()[:, 0]
            labels = [
                f"hand {s:.2f}: {a:.0f} mo"
                for s, a in zip(inst.scores[keep].tolist(), ages[keep].tolist())
            ]
            if len(keep):
                colors = [HAND_COLORS[k % len(HAND_COLORS)] for k in range(len(keep))]
                vis.overlay_instances(
                    masks=inst.pred_masks[keep].numpy(),
                    boxes=boxes[keep.numpy()],
                    labels=labels,
                    assigned_colors=colors,
                )
        else:
            ages = inst.patch_boneage.tolist() if inst.has("patch_boneage") else None
            for rank, box in enumerate(boxes):
                label = str(rank + 1) if ages is None else f"{rank + 1}: {ages[rank]:.0f}"
                vis.draw_box(box, edge_color=ROI_COLOR, alpha=0.8)
                vis.draw_text(label, tuple(box[:2]), color=ROI_COLOR, font_size=font * 0.6)
    age = output.get("boneage")
    caption = age_caption(None if age is None else float(age), male, prefix="predicted: ")
    flags = output.get("flags") or []
    if flags:
        caption += f"  [{', '.join(flags)}]"
    vis.draw_text(
        caption, (8, 8), color=(1.0, 1.0, 1.0), horizontal_alignment="left", font_size=font * 1.3
    )
    return vis.get_output().get_image()


def draw_ground_truth(record: dict, metadata=None, scale: float = 1.0) -> np.ndarray:
    """An RGB image of one dataset dict: hand masks and boxes, keypoints with landmark names,
    anatomical ROI boxes (with landmark index), and the age and sex.

    ``record`` is a dict from ``DatasetCatalog.get(name)`` (docs/data.md); ``metadata`` its
    ``MetadataCatalog`` entry (for keypoint names), or None for the default names.
    """
    gray = read_radiograph(record["file_name"])
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    meta = metadata if metadata is not None else _hand_metadata()
    vis = Visualizer(rgb, meta, scale=scale, instance_mode=ColorMode.IMAGE)
    hands = record.get("annotations", [])
    # draw_dataset_dict decides from the first annotation whether all have masks and keypoints:
    # it gets the hands only, and the ROI boxes are drawn separately below.
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
