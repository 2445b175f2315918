"""Inference section: each model against a reference network on the same input.

ALA-Net and the global baseline are compared with a bare ResNet (same config and weights) on the
tensor their backbone reads; HandSeg-RAN with a plain Mask R-CNN sharing its detector weights, so
both find the same detections and the ratio is the cost of the bone-age branch.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import Settings, load_cfg
from .timing import attempt, autocast, device_sync, fmt_s, log, precisions, time_interleaved

__all__ = [
    "REFERENCES",
    "InferenceCase",
    "bench_inference",
    "compare_handseg",
    "dataset_inputs",
    "handseg_pair",
    "plain_mask_rcnn",
    "synthetic_inputs",
]


@dataclass(frozen=True)
class InferenceCase:
    """One model-versus-reference comparison: ``reference`` names a builder in ``REFERENCES``."""

    name: str
    config: str  # as written in the results; read relative to ``bench_inference``'s ``root``
    reference: str
    max_ratio: float  # target: model median / reference median <= this


def synthetic_inputs(long_side: int, count: int) -> list[dict]:
    """``count`` model inputs: a bright hand-like ellipse on a dark, noisy background.

    Portrait 4:3-ish (width = 0.78 x ``long_side``), ``"image"`` uint8 [3, H, W] (grey replicated
    as the mapper does), ``"male"`` alternating, ``"height"``/``"width"`` of the image.
    """
    import torch

    h, w = long_side, int(long_side * 0.78)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    blob = ((xx - w / 2) / (w / 3)) ** 2 + ((yy - h / 2) / (h / 2.4)) ** 2 <= 1
    inputs = []
    for i in range(count):
        g = torch.Generator().manual_seed(i)
        img = 20 + 150 * blob.float() + 20 * torch.rand((h, w), generator=g)
        image = img.clamp(0, 255).to(torch.uint8).expand(3, h, w).clone()
        inputs.append({"image": image, "male": i % 2 == 0, "height": h, "width": w})
    return inputs


def plain_mask_rcnn(cfg: Any, model: Any) -> Any:
    """Detectron2's ``GeneralizedRCNN`` from ``cfg``, with the detector weights of ``model``.

    ``model`` is a ``GeneralizedRCNN`` subclass (``HandSegBoneAgeRCNN``); the plain one then
    finds the same detections, so their time difference is the subclass's own cost. Raises
    ``KeyError`` when ``model`` lacks any of the plain model's parameters.
    """
    from detectron2.modeling import build_model

    plain_cfg = cfg.clone()
    plain_cfg.defrost()
    plain_cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
    plain = build_model(plain_cfg).eval()
    missing = plain.load_state_dict(model.state_dict(), strict=False).missing_keys
    if missing:
        raise KeyError(
            f"plain Mask R-CNN weights missing from {type(model).__name__}: {missing[:5]}"
        )
    return plain


Binder = Callable[[list[dict]], tuple[Callable[[], object], list[int]]]


def _backbone_reference(cfg, model) -> tuple[str, Binder]:
    """A bare ResNet (same config and weights) on the tensor the model's backbone reads."""
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone.resnet import build_resnet_backbone

    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))
    backbone.load_state_dict(model.backbone.state_dict())
    backbone.to(model.device).eval()

    def bind(inputs: list[dict]):
        x = model.preprocess_image(inputs).tensor
        return (lambda: backbone(x)), list(x.shape)

    return f"bare ResNet-{cfg.MODEL.RESNETS.DEPTH} backbone", bind


def _mask_rcnn_reference(cfg, model) -> tuple[str, Binder]:
    """Plain Mask R-CNN (``plain_mask_rcnn``) on the same inputs."""
    plain = plain_mask_rcnn(cfg, model).to(model.device)

    def bind(inputs: list[dict]):
        return (lambda: plain(inputs)), list(plain.preprocess_image(inputs).tensor.shape)

    return f"plain Mask R-CNN R{cfg.MODEL.RESNETS.DEPTH}-FPN", bind


REFERENCES: dict[str, Callable[..., tuple[str, Binder]]] = {
    "backbone": _backbone_reference,
    "mask_rcnn": _mask_rcnn_reference,
}


def _on_device(inputs: list[dict], device: str) -> list[dict]:
    return [{**x, "image": x["image"].to(device)} for x in inputs]


def _compare(model, bind: Binder, inputs: list[dict], device: str, precision: str, s: Settings):
    """Interleaved timings of ``model(inputs)`` and its reference; medians and their ratio."""
    import torch

    with torch.inference_mode(), autocast(device, precision):
        ref_call, ref_shape = bind(inputs)
        model_shape = list(model.preprocess_image(inputs).tensor.shape)
        times = time_interleaved(
            {"model": lambda: model(inputs), "reference": ref_call},
            s.warmup,
            s.repeats,
            sync=device_sync(device),
            budget_s=s.budget_s,
        )
    model_s, ref_s = (statistics.median(times[k]) for k in ("model", "reference"))
    log(f"  {fmt_s(model_s)} vs {fmt_s(ref_s)}: {model_s / ref_s:.2f}x")
    return {
        "image_hw": list(inputs[0]["image"].shape[-2:]),
        "model_input": model_shape,
        "reference_input": ref_shape,
        "repeats": len(times["model"]),
        "model_s": model_s,
        "reference_s": ref_s,
        "ratio": model_s / ref_s,
        # Median of the per-round ratios: less sensitive to drift between rounds.
        "paired_ratio": statistics.median(m / r for m, r in zip(*times.values())),
        "model_samples_s": times["model"],
        "reference_samples_s": times["reference"],
    }


def bench_inference(
    cases: Sequence[InferenceCase], devices: Sequence[str], s: Settings, root: Path = Path(".")
) -> list[dict]:
    """Every case on every device, precision and batch size; configs read under ``root``."""
    import torch
    from detectron2.modeling import build_model

    rows = []
    for case, device in itertools.product(cases, devices):
        cfg = load_cfg(root / case.config, device, s.inference_opts)
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        ref_name, bind = REFERENCES[case.reference](cfg, model)
        for precision, batch in itertools.product(precisions(device), s.batches):
            row = {
                "case": f"{case.name} ({device} {precision}, batch {batch})",
                "model": case.name,
                "config": case.config,
                "reference": ref_name,
                "device": device,
                "precision": precision,
                "batch": batch,
                "threads": torch.get_num_threads(),
                "target": f"<= {case.max_ratio}x",
            }
            log(f"inference: {case.name} vs {ref_name}, {device} {precision}, batch {batch} ...")
            inputs = _on_device(synthetic_inputs(cfg.BONEAGE.INPUT.LONG_SIDE_TEST, batch), device)
            attempt(row, _compare, model, bind, inputs, device, precision, s)
            if "ratio" in row:
                row["passed"] = row["ratio"] <= case.max_ratio
            rows.append(row)
    return rows


# ------------------------------------------- HandSeg-RAN at batch 1, trained weights, real images
def handseg_pair(cfg: Any, weights: str | None = None) -> tuple[Any, Any]:
    """``(HandSegBoneAgeRCNN, plain Mask R-CNN)`` from ``cfg`` in eval mode, sharing detector
    weights: random (seed 0) or the checkpoint ``weights``. Raises ``KeyError`` as
    ``plain_mask_rcnn`` does."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    torch.manual_seed(0)
    model = build_model(cfg).eval()
    if weights:
        DetectionCheckpointer(model).load(weights)
    return model, plain_mask_rcnn(cfg, model)


def dataset_inputs(cfg: Any, dataset: str, count: int) -> list[dict]:
    """The first ``count`` records of the registered ``dataset`` through the test-time mapper."""
    from detectron2.data import DatasetCatalog

    from boneage_d2.data import BoneAgeDatasetMapper

    mapper = BoneAgeDatasetMapper(cfg, is_train=False)
    return [mapper(r) for r in DatasetCatalog.get(dataset)[:count]]


def compare_handseg(
    model: Any, plain: Any, inputs: list[dict], warmup: int, repeats: int
) -> dict[str, Any]:
    """Batch-1 interleaved medians of ``model`` and ``plain``, cycling through ``inputs`` (both
    see the same image each round), and the bone-age crops per image after warm-up."""
    import torch

    counter = {"plain": 0, "model": 0}
    crops: list[int] = []

    def run(name: str, net) -> None:
        x = inputs[counter[name] % len(inputs)]
        counter[name] += 1
        out = net([x])[0]
        if name == "model":
            crops.append(max(int(torch.isfinite(out["instances"].boneage).sum()), 1))

    with torch.inference_mode():
        times = time_interleaved(
            {"plain": lambda: run("plain", plain), "model": lambda: run("model", model)},
            warmup,
            repeats,
        )
    plain_s, model_s = statistics.median(times["plain"]), statistics.median(times["model"])
    return {
        "image_hw": list(inputs[0]["image"].shape[-2:]),
        "plain_s": plain_s,
        "model_s": model_s,
        "ratio": model_s / plain_s,
        "crops_per_image": statistics.mean(crops[warmup:]),
    }
