"""``BoneAgePredictor``: Detectron2's ``DefaultPredictor`` for radiographs and their sex."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.data.build import trivial_batch_collator
from detectron2.engine import DefaultPredictor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..checks import ImageChecks
from ..data.mapper import radiograph_to_tensor
from ..data.transforms import build_boneage_augmentation
from ..evaluation.intervals import apply_calibration, calibration_for_config
from ..io.intensity import IntensityPipeline
from ..io.radiograph import DEFAULT_MAX_PIXELS, ImageReadError, read_radiograph
from ..modeling.flip_tta import BoneAgeFlipTTA

__all__ = ["BoneAgeEnsemble", "BoneAgePredictor", "RadiographFiles"]

logger = logging.getLogger(__name__)


class RadiographFiles(Dataset):
    """Radiograph files with their sex -> model inputs (read through ``intensity``, None = the
    default pipeline, and refused above ``max_pixels``; the test-time augmentation applied).

    An unreadable file does not stop the run: its item is ``{"file_name", "error"}``.
    """

    def __init__(
        self,
        files: Sequence[str],
        males: Sequence[bool],
        augmentations,
        intensity: IntensityPipeline | None = None,
        checks: ImageChecks | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        if len(files) != len(males):
            raise ValueError(f"{len(files)} files but {len(males)} sex values")
        self.files, self.males = list(files), list(males)
        self.augmentations = augmentations
        self.intensity = intensity or IntensityPipeline()
        self.checks = checks or ImageChecks()
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        path, male = str(self.files[i]), bool(self.males[i])
        try:
            gray = read_radiograph(path, self.intensity, self.max_pixels)
        except ImageReadError as e:
            return {"file_name": path, "male": male, "error": str(e)}
        image, _ = radiograph_to_tensor(gray, self.augmentations)
        h, w = gray.shape
        flags = self.checks.flags(gray)
        return {
            "file_name": path,
            "male": male,
            "image": image,
            "height": h,
            "width": w,
            "input_flags": flags,
        }


class BoneAgePredictor(DefaultPredictor):
    """Inference with a trained bone-age model, one image or thousands.

        cfg.MODEL.WEIGHTS = "output/alanet_r18_demo/model_final.pth"
        predictor = BoneAgePredictor(cfg)
        out = predictor("1377.png", male=True)  # a path, or predictor.read(path)'s array
        out["boneage"]  # months, 0-dim tensor

    Builds the model, loads ``MODEL.WEIGHTS`` and switches to eval mode as ``DefaultPredictor``
    does; the intensity pipeline (``BONEAGE.INPUT.INTENSITY``) and the test-time augmentation
    (``BONEAGE.INPUT.LONG_SIDE_TEST``) are the config's, the same as evaluation. Outputs are
    the model's own (``boneage``; ALA-Net: ROI ``instances``; HandSeg-RAN: hand ``instances``
    with per-hand ``boneage``, ``flags``, ``attention_maps``), in original-image pixels; with an
    interval calibration (``BONEAGE.INTERVALS``: the sidecar beside the weights, written by
    ``tools/calibrate_intervals.py``) also ``boneage_lo`` / ``boneage_hi`` (months).
    """

    def __init__(self, cfg):
        super().__init__(cfg)
        if self.cfg.BONEAGE.TEST.FLIP_TTA:
            self.model = BoneAgeFlipTTA(self.model).eval()
        self.aug = T.AugmentationList(build_boneage_augmentation(self.cfg, is_train=False))
        self.intensity = IntensityPipeline.from_config(self.cfg)
        self.checks = ImageChecks.from_config(self.cfg)
        self.max_pixels = int(self.cfg.BONEAGE.INPUT.MAX_PIXELS)
        self.interval_calibration = calibration_for_config(self.cfg)

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """A radiograph file -> the uint8 [H, W] model input, through the config's pipeline (and
        its pixel budget, ``BONEAGE.INPUT.MAX_PIXELS``)."""
        return read_radiograph(path, self.intensity, self.max_pixels)

    def model_input(self, image: np.ndarray, male: bool) -> dict:
        """A radiograph (uint8 [H, W], from ``read``) -> the model's input dict."""
        image = np.asarray(image)
        if image.ndim != 2 or image.dtype != np.uint8:
            raise ValueError(
                f"expected a uint8 [H, W] radiograph, got {image.dtype} {list(image.shape)}; "
                "read files with BoneAgePredictor.read (the config's intensity pipeline)"
            )
        tensor, _ = radiograph_to_tensor(image, self.aug)
        h, w = image.shape
        flags = self.checks.flags(image)
        return {"image": tensor, "male": bool(male), "height": h, "width": w, "input_flags": flags}

    def __call__(self, image: np.ndarray | str | os.PathLike, male: bool) -> dict:
        """Predict one radiograph (uint8 [H, W], or a file read by ``read``); returns the model's
        output dict."""
        if isinstance(image, (str, os.PathLike)):
            image = self.read(image)
        return self.predict_batch([self.model_input(image, male)])[0]

    def predict_batch(self, inputs: list[dict]) -> list[dict]:
        """Model outputs for a list of input dicts (``model_input`` or ``RadiographFiles``); each
        output's ``flags`` start with its input's (``BONEAGE.CHECKS``), then the model's."""
        with torch.inference_mode():
            outputs = self.model(inputs)
        for x, out in zip(inputs, outputs):
            out["flags"] = list(x.get("input_flags", [])) + list(out.get("flags", []))
            if self.interval_calibration and "boneage" in out:
                lo, hi = apply_calibration(self.interval_calibration, [float(out["boneage"])])
                out["boneage_lo"], out["boneage_hi"] = float(lo[0]), float(hi[0])
        return outputs

    def predict_files(
        self,
        files: Sequence[str],
        males: Sequence[bool],
        *,
        batch_size: int = 8,
        num_workers: int = 0,
        progress: bool = True,
    ) -> Iterator[tuple[dict, dict | None]]:
        """Yield ``(input, output)`` per file, in order; ``output`` is None for an unreadable
        file (its input carries ``"error"``). Images are read by ``num_workers`` processes."""
        loader = DataLoader(
            RadiographFiles(files, males, self.aug, self.intensity, self.checks, self.max_pixels),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=trivial_batch_collator,
        )
        with tqdm(total=len(files), desc="predicting", unit="img", disable=not progress) as bar:
            for batch in loader:
                good = [x for x in batch if "error" not in x]
                outputs = iter(self.predict_batch(good) if good else [])
                for x in batch:
                    if "error" in x:
                        logger.warning(x["error"])
                    bar.update(1)
                    yield x, (None if "error" in x else next(outputs))


UNCALIBRATED_KEYS = ("boneage_lo", "boneage_hi", "boneage_rank_lo", "boneage_rank_hi")


class BoneAgeEnsemble:
    """Several trained bone-age models as one predictor: the age of a film is the mean of the
    members' ages, each member reading the file through its own config (input size, intensity
    pipeline, test-time flip).

    Each output is the first member's (its hands or ROIs, for overlays) with ``boneage`` the mean,
    ``member_ages`` the members' ages (months, in member order) and ``flags`` every member's
    flags. Intervals are dropped: a calibration belongs to one model, not to their mean.
    """

    def __init__(self, predictors: Sequence[BoneAgePredictor]):
        if len(predictors) < 2:
            raise ValueError(f"an ensemble needs >= 2 models, got {len(predictors)}")
        self.predictors = list(predictors)

    def combine(self, outputs: Sequence[dict]) -> dict:
        """The members' outputs for one film -> the ensemble's output."""
        merged = {k: v for k, v in outputs[0].items() if k not in UNCALIBRATED_KEYS}
        ages = torch.stack([torch.as_tensor(o["boneage"], dtype=torch.float32) for o in outputs])
        merged["boneage"] = ages.mean()
        merged["member_ages"] = [float(a) for a in ages]
        merged["flags"] = list(dict.fromkeys(f for o in outputs for f in o.get("flags", [])))
        return merged

    def predict_files(
        self, files: Sequence[str], males: Sequence[bool], **kwargs
    ) -> Iterator[tuple[dict, dict | None]]:
        """``BoneAgePredictor.predict_files`` of every member, combined per file (None when a
        member could not read it)."""
        progress = kwargs.pop("progress", True)
        streams = [
            p.predict_files(files, males, progress=progress and i == 0, **kwargs)
            for i, p in enumerate(self.predictors)
        ]
        for items in zip(*streams):
            outputs = [out for _, out in items]
            if any(out is None for out in outputs):
                yield next((inp for inp, out in items if out is None)), None
            else:
                yield items[0][0], self.combine(outputs)
