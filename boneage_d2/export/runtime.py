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

__all__ = ["ExportedBoneAgeModel", "parity_with_predictor"]


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


def parity_with_predictor(exported: ExportedBoneAgeModel, predictor, films, males) -> dict:
    """Largest differences between the exported graph and the eager ``BoneAgePredictor`` over
    ``films`` (uint8 [H, W] arrays): ``age_months`` (the image age), ``rank_months`` (ordinal
    interval ends), ``box_px`` (ROI box corners, original pixels) and ``score``."""
    worst = {"age_months": 0.0, "rank_months": 0.0, "box_px": 0.0, "score": 0.0}
    for gray, male in zip(films, males):
        got, want = exported(gray, male), predictor(gray, male=male)
        worst["age_months"] = max(worst["age_months"], abs(got["boneage"] - float(want["boneage"])))
        for k in ("boneage_rank_lo", "boneage_rank_hi"):
            if k in want:
                worst["rank_months"] = max(worst["rank_months"], abs(got[k] - float(want[k])))
        inst = want.get("instances")
        if inst is not None and "boxes" in got:
            if len(inst) != len(got["boxes"]):
                raise AssertionError(f"{len(got['boxes'])} exported ROIs, {len(inst)} eager")
            boxes = inst.pred_boxes.tensor.cpu().numpy()
            worst["box_px"] = max(worst["box_px"], float(np.abs(got["boxes"] - boxes).max()))
            d = np.abs(got["scores"] - inst.scores.cpu().numpy()).max()
            worst["score"] = max(worst["score"], float(d))
    return worst
