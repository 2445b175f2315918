"""``BoneAgeEvaluator``: a Detectron2 ``DatasetEvaluator`` for bone-age predictions."""

from __future__ import annotations

import csv
import itertools
import logging
import os
from collections import OrderedDict

from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..io.atomic import atomic_open
from .intervals import apply_calibration, interval_metrics
from .metrics import boneage_metrics

__all__ = ["BoneAgeEvaluator", "PREDICTIONS_CSV"]

logger = logging.getLogger(__name__)
PREDICTIONS_CSV = "boneage_predictions.csv"


class BoneAgeEvaluator(DatasetEvaluator):
    """Collects ``outputs[i]["boneage"]`` against ``inputs[i]["boneage"]`` and reports metrics.

    Reads the label and sex from the model inputs (the mapper carries them), gathers the rows
    from every process, drops duplicates by ``image_id``, writes ``boneage_predictions.csv`` in
    ``output_dir`` and returns ``{"boneage": {...}}`` (see ``boneage_metrics``). Images without a
    label are written to the CSV and left out of the metrics.

    With ``interval_calibration`` (a split-conformal calibration, ``evaluation.intervals``) the
    CSV gains ``boneage_lo`` / ``boneage_hi`` and the metrics ``interval_coverage`` (percent of
    true ages inside) and ``interval_mean_width`` (months), overall and per band of the true age;
    an ordinal head's own interval (``boneage_rank_lo/hi`` in the outputs) is reported the same
    way as ``rank_interval_*``.
    """

    def __init__(
        self,
        dataset_name: str,
        output_dir: str | None = None,
        *,
        distributed: bool = True,
        train_mean_months: float | None = None,
        age_bands: tuple[float, ...] = (0, 24, 60, 120, 180, 240),
        bootstrap_samples: int = 1000,
        interval_calibration: dict | None = None,
    ):
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self.distributed = distributed
        self.train_mean_months = train_mean_months
        self.age_bands = tuple(age_bands)
        self.bootstrap_samples = bootstrap_samples
        self.interval_calibration = interval_calibration
        self._rows: list[dict] = []

    def reset(self) -> None:
        self._rows = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            if "boneage" not in out:  # a detection-only model (e.g. the vanilla-RPN baseline)
                continue
            true = inp.get("boneage")
            self._rows.append(
                {
                    "image_id": inp["image_id"],
                    "file_name": os.path.basename(inp.get("file_name", "")),
                    "male": bool(inp["male"]),
                    "boneage_true": None if true is None else float(true),
                    "boneage_pred": float(out["boneage"]),
                    "flags": ";".join(out.get("flags", ())),
                    **{
                        k: float(out[k]) for k in ("boneage_rank_lo", "boneage_rank_hi") if k in out
                    },
                }
            )

    def _gathered_rows(self) -> list[dict] | None:
        if not self.distributed:
            return self._rows
        comm.synchronize()
        parts = comm.gather(self._rows, dst=0)
        if not comm.is_main_process():
            return None
        return list(itertools.chain(*parts))

    def predictions(self) -> list[dict] | None:
        """The gathered rows, one per image (by ``image_id``), with ``boneage_lo/hi`` under a
        calibration; None on a non-main process."""
        rows = self._gathered_rows()
        if rows is None:
            return None
        unique = {r["image_id"]: r for r in rows}  # an image seen twice counts once
        rows = [unique[k] for k in sorted(unique, key=str)]
        if self.interval_calibration and rows:
            lo, hi = apply_calibration(self.interval_calibration, [r["boneage_pred"] for r in rows])
            for r, a, b in zip(rows, lo.tolist(), hi.tolist()):
                r["boneage_lo"], r["boneage_hi"] = a, b
        return rows

    def evaluate(self):
        rows = self.predictions()
        if not rows:
            return {}
        if self.output_dir:
            self._write_csv(rows, os.path.join(self.output_dir, PREDICTIONS_CSV))
        labelled = [r for r in rows if r["boneage_true"] is not None]
        if len(labelled) < len(rows):
            logger.warning(
                f"{self.dataset_name}: {len(rows) - len(labelled)} of {len(rows)} images have no "
                "bone-age label; they are in the predictions CSV but not in the metrics"
            )
        if self.train_mean_months is None:
            logger.warning("no training-set mean given: the mean-predictor MAE is not reported")
        metrics = boneage_metrics(
            [r["boneage_true"] for r in labelled],
            [r["boneage_pred"] for r in labelled],
            [r["male"] for r in labelled],
            age_bands=self.age_bands,
            train_mean_months=self.train_mean_months,
            bootstrap_samples=self.bootstrap_samples,
        )
        for prefix, lo, hi in (
            ("interval", "boneage_lo", "boneage_hi"),
            ("rank_interval", "boneage_rank_lo", "boneage_rank_hi"),
        ):
            if labelled and all(lo in r for r in labelled):
                found = interval_metrics(
                    [r["boneage_true"] for r in labelled],
                    [r[lo] for r in labelled],
                    [r[hi] for r in labelled],
                    age_bands=self.age_bands,
                )
                metrics.update({f"{prefix}_{k}": v for k, v in found.items()})
        return OrderedDict(boneage=metrics)

    @staticmethod
    def _write_csv(rows: list[dict], path: str) -> None:
        fields = [
            "image_id",
            "file_name",
            "male",
            "boneage_true",
            "boneage_pred",
            "abs_error",
            "flags",
        ]
        fields += [
            k
            for k in ("boneage_lo", "boneage_hi", "boneage_rank_lo", "boneage_rank_hi")
            if any(k in r for r in rows)
        ]
        with atomic_open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for r in rows:
                true = r["boneage_true"]
                err = "" if true is None else f"{abs(r['boneage_pred'] - true):.3f}"
                writer.writerow(
                    {
                        **r,
                        "boneage_true": "" if true is None else f"{true:.3f}",
                        "boneage_pred": f"{r['boneage_pred']:.3f}",
                        "abs_error": err,
                    }
                )
        logger.info(f"bone-age predictions written to {path}")
