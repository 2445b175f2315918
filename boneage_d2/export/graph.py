"""Trace a bone-age model through Detectron2's ``TracingAdapter`` into TorchScript and ONNX.

The exported graph takes what the model reads after the config's test resize: ``image``, a
float [3, H, W] tensor of 0-255 grey levels (any H, W: the graph is traced with dynamic sizes),
and ``male``, a 0-dim float (1 male, 0 female). It returns the model's tensors, flattened in
the sorted order of their names (``export.json`` lists them): ``boneage`` (months), the
ordinal head's ``boneage_rank_lo`` / ``boneage_rank_hi`` and, for ALA-Net, the ROI ``boxes``
(input pixels), ``scores`` and ``patch_boneage``. Flags, intervals and the scaling of boxes to
the original film stay outside the graph (:class:`ExportedBoneAgeModel` does them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from detectron2.export import TracingAdapter
from torch import Tensor, nn

from ..io.atomic import atomic_write_json

__all__ = ["EXPORT_FORMATS", "ExportError", "export_model", "exportable_outputs"]

EXPORT_FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 17
EXPORT_INFO = "export.json"
# Models whose inference a trace cannot represent, and why (docs/export.md).
NOT_TRACEABLE = {
    "HandSegBoneAgeRCNN": (
        "HandSeg-RAN is not exportable as one graph: its detector reads a rescaled copy of the "
        "film whose size is computed in Python, and each detected hand is cropped, resized and "
        "regressed in a Python loop over a data-dependent number of hands, so a trace would "
        "freeze the hand count of the example image"
    ),
}


class ExportError(RuntimeError):
    """A model or format that cannot be exported; the message says why."""


def exportable_outputs(output: dict) -> dict[str, Tensor]:
    """The tensors of one model output, by name (what the exported graph returns)."""
    out = {k: v for k, v in output.items() if isinstance(v, Tensor)}
    inst = output.get("instances")
    if inst is not None:
        out["boxes"] = inst.pred_boxes.tensor
        out["scores"] = inst.scores
        if inst.has("patch_boneage"):
            out["patch_boneage"] = inst.patch_boneage
    return out


def _infer(model: nn.Module, image: Tensor, male: Tensor) -> dict[str, Tensor]:
    return exportable_outputs(model([{"image": image, "male": male}])[0])


def tracing_adapter(model: nn.Module, image: Tensor, male: Tensor) -> TracingAdapter:
    """``TracingAdapter`` over ``model`` called on one (image, male) pair, in eval mode."""
    arch = type(model).__name__
    if arch in NOT_TRACEABLE:
        raise ExportError(NOT_TRACEABLE[arch])
    return TracingAdapter(model.eval(), (image.float(), male.float()), _infer).eval()


def _output_names(adapter: TracingAdapter) -> list[str]:
    """The graph's output names, in the order of its flattened outputs (the dict's sorted keys:
    Detectron2's ``DictSchema``)."""
    with torch.no_grad():
        adapter(*adapter.flattened_inputs)  # records the outputs' schema
    return list(adapter.outputs_schema.keys)


def export_model(
    model: nn.Module,
    image: Tensor,
    male: bool,
    output_dir: str | os.PathLike,
    formats: tuple[str, ...] = EXPORT_FORMATS,
    provenance: dict | None = None,
) -> dict:
    """Trace ``model`` on the example ``image`` ([3, H, W], after the test resize) and write
    ``model.ts`` / ``model.onnx`` and ``export.json`` in ``output_dir``.

    Returns the ``export.json`` content: ``inputs``, ``outputs`` (names in graph order),
    ``formats`` (format -> file name, or the reason it failed) and ``provenance``. A format
    that fails is reported, not raised; ``ExportError`` when no format could be written.
    """
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; expected {EXPORT_FORMATS}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    adapter = tracing_adapter(model, image, torch.tensor(float(male)))
    names = _output_names(adapter)
    results: dict[str, str] = {}
    for fmt in formats:
        try:
            results[fmt] = _write(fmt, adapter, names, out)
        except Exception as e:  # a format the ops do not allow: reported, the others go on
            results[fmt] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
    info = {
        "meta_architecture": type(model).__name__,
        "inputs": {
            "image": "float32 [3, H, W], grey levels 0-255 after the config's test resize",
            "male": "float32 [], 1 male / 0 female",
        },
        "outputs": names,
        "formats": results,
        "onnx_opset": ONNX_OPSET,
        "provenance": provenance or {},
    }
    atomic_write_json(out / EXPORT_INFO, info, indent=1)
    if not any(not v.startswith("failed") for v in results.values()):
        raise ExportError(f"no format could be exported: {json.dumps(results)}")
    return info


def _write(fmt: str, adapter: TracingAdapter, names: list[str], out: Path) -> str:
    """Write one format into ``out`` (atomically: a temporary name, then renamed)."""
    name = {"torchscript": "model.ts", "onnx": "model.onnx"}[fmt]
    tmp = out / f".{name}.tmp"
    with torch.no_grad():
        if fmt == "torchscript":
            traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
            torch.jit.save(traced, str(tmp))
        else:
            torch.onnx.export(
                adapter,
                adapter.flattened_inputs,
                str(tmp),
                input_names=["image", "male"],
                output_names=names,
                dynamic_axes={"image": {1: "height", 2: "width"}, **_dynamic_outputs(names)},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
            adapter.eval()  # export restores the adapter's mode recursively: keep eval
    os.replace(tmp, out / name)
    return name


def _dynamic_outputs(names: list[str]) -> dict:
    """The ROI outputs' first axis is the number of ROIs kept (it can vary)."""
    return {n: {0: "rois"} for n in names if n in ("boxes", "scores", "patch_boneage")}
