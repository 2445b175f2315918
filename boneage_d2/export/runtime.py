"""Run an exported bone-age graph (TorchScript or ONNX Runtime) on a radiograph, with the same
resize, input checks and box scaling as ``BoneAgePredictor``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.structures import Boxes

from ..checks import ImageChecks
from ..data.mapper import radiograph_to_tensor
from ..data.transforms import build_boneage_augmentation
from .graph import EXPORT_INFO

__all__ = ["ExportedBoneAgeModel", "match_rois", "parity_with_predictor", "rois_out_of_order"]

# ROIs whose scores differ by less than this in both models may swap places (float noise).
ROI_TIE_TOL = 1e-5


class ExportedBoneAgeModel:
    """An exported graph (``model.ts`` or ``model.onnx`` beside its ``export.json``) behind the
    predictor's interface: ``model(gray, male)`` -> ``boneage`` (months, float), the ordinal
    interval when the graph has it, ALA-Net's ``boxes`` in original-film pixels, ``scores``,
    ``patch_boneage`` (numpy), and the input ``flags``. ``cfg``: the config it was exported from
    (its test resize and ``BONEAGE.CHECKS``)."""

    def __init__(self, path: str | Path, cfg):
        self.path = Path(path)
        info_path = self.path.with_name(EXPORT_INFO)
        try:
            self.info = json.loads(info_path.read_text())
        except (OSError, ValueError) as e:
            raise FileNotFoundError(
                f"{info_path}: the export's description is missing ({e})"
            ) from e
        self.output_names = list(self.info["outputs"])
        self.aug = T.AugmentationList(build_boneage_augmentation(cfg, is_train=False))
        self.checks = ImageChecks.from_config(cfg)
        if self.path.suffix == ".onnx":
            import onnxruntime as ort

            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            self.module = None
        else:
            self.module = torch.jit.load(str(self.path), map_location="cpu").eval()
            self.session = None

    def run_graph(self, image: torch.Tensor, male: bool) -> dict[str, np.ndarray]:
        """The graph's raw outputs by name for a resized [3, H, W] image."""
        x, m = image.float(), torch.tensor(float(male))
        if self.session is not None:
            outs = self.session.run(None, {"image": x.numpy(), "male": m.numpy()})
        else:
            with torch.inference_mode():
                outs = [o.numpy() for o in self.module(x, m)]
        return dict(zip(self.output_names, outs))

    def __call__(self, gray: np.ndarray, male: bool) -> dict:
        """Predict one uint8 [H, W] radiograph (read with the config's intensity pipeline)."""
        image, _ = radiograph_to_tensor(gray, self.aug)
        raw = self.run_graph(image, male)
        out: dict = {k: float(v) for k, v in raw.items() if np.ndim(v) == 0}
        if "boxes" in raw:  # to film pixels the way detector_postprocess does it
            h, w = gray.shape
            boxes = Boxes(torch.from_numpy(np.asarray(raw["boxes"])))
            boxes.scale(w / image.shape[2], h / image.shape[1])
            boxes.clip((h, w))
            keep = boxes.nonempty().numpy()
            out["boxes"] = boxes.tensor.numpy()[keep]
            out["scores"] = raw["scores"][keep]
            if "patch_boneage" in raw:
                out["patch_boneage"] = raw["patch_boneage"][keep]
        out["flags"] = self.checks.flags(gray)
        return out


def match_rois(got: np.ndarray, want: np.ndarray) -> list[tuple[int, int, float]]:
    """Pair exported ROI boxes ``got`` [R, 4] with eager ones ``want`` [S, 4] as sets: closest
    pairs first (distance: the largest corner difference, px); ``(got index, want index,
    distance)`` for min(R, S) pairs, in ``got`` order."""
    if len(got) == 0 or len(want) == 0:
        return []
    dist = np.abs(got[:, None, :] - want[None, :, :]).max(axis=2)
    pairs: dict[int, tuple[int, float]] = {}
    used: set[int] = set()
    for flat in np.argsort(dist, axis=None, kind="stable"):
        i, j = divmod(int(flat), dist.shape[1])
        if i not in pairs and j not in used:
            pairs[i] = (j, float(dist[i, j]))
            used.add(j)
    return [(i, j, d) for i, (j, d) in sorted(pairs.items())]


def rois_out_of_order(
    want_index: list[int], got_scores: np.ndarray, want_scores: np.ndarray, tie_tol: float
) -> int:
    """Pairs of matched ROIs that the two models order differently. ``want_index[k]``: the eager
    ROI matched to exported ROI k. A swap is excused only as float noise: both models' scores
    within ``tie_tol`` and not exactly tied in both (exact ties are ordered by the box)."""
    wrong = 0
    for a in range(len(want_index)):
        for b in range(a + 1, len(want_index)):
            i, j = want_index[a], want_index[b]
            if i < j:
                continue
            close = abs(got_scores[a] - got_scores[b]) <= tie_tol
            close &= abs(want_scores[i] - want_scores[j]) <= tie_tol
            exact = got_scores[a] == got_scores[b] and want_scores[i] == want_scores[j]
            wrong += int(not close or exact)
    return wrong


def parity_with_predictor(
    exported: ExportedBoneAgeModel, predictor, films, males, tie_tol: float = ROI_TIE_TOL
) -> dict:
    """Largest differences between the exported graph and the eager ``BoneAgePredictor`` over
    ``films`` (uint8 [H, W] arrays): ``age_months`` (the image age), ``rank_months`` (ordinal
    interval ends) and, ROIs matched as sets (``match_rois``), ``box_px`` (box corners, original
    pixels), ``score`` and ``roi_age_months``; with counts over the films: ``roi_count_differs``
    (films whose ROI counts differ) and ``rois_out_of_order`` (matched pairs ordered
    differently, see ``rois_out_of_order``)."""
    worst = {"age_months": 0.0, "rank_months": 0.0, "box_px": 0.0, "score": 0.0}
    worst.update(roi_age_months=0.0, roi_count_differs=0, rois_out_of_order=0)
    for gray, male in zip(films, males):
        got, want = exported(gray, male), predictor(gray, male=male)
        worst["age_months"] = max(worst["age_months"], abs(got["boneage"] - float(want["boneage"])))
        for k in ("boneage_rank_lo", "boneage_rank_hi"):
            if k in want:
                worst["rank_months"] = max(worst["rank_months"], abs(got[k] - float(want[k])))
        inst = want.get("instances")
        if inst is None or "boxes" not in got:
            continue
        boxes = inst.pred_boxes.tensor.cpu().numpy()
        scores = inst.scores.cpu().numpy()
        worst["roi_count_differs"] += int(len(boxes) != len(got["boxes"]))
        pairs = match_rois(got["boxes"], boxes)
        for i, j, dist in pairs:
            worst["box_px"] = max(worst["box_px"], dist)
            worst["score"] = max(worst["score"], float(abs(got["scores"][i] - scores[j])))
            if "patch_boneage" in got and inst.has("patch_boneage"):
                d = abs(float(got["patch_boneage"][i]) - float(inst.patch_boneage[j]))
                worst["roi_age_months"] = max(worst["roi_age_months"], d)
        order = [j for _, j, _ in pairs]
        worst["rois_out_of_order"] += rois_out_of_order(order, got["scores"], scores, tie_tol)
    return worst
