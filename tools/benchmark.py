"""Command line: inference, training, data-loading and conversion costs in one run, with ratios.

    python tools/benchmark.py                       # everything, outputs/benchmark/benchmark.json
    python tools/benchmark.py --only inference --threads 2
    python tools/benchmark.py --quick --only loader,training --datasets-root datasets

What is measured (random-init weights, nothing downloaded; CPU always, and the GPU in fp32 and
``torch.autocast`` fp16 when CUDA is available):

- **inference**: each model against its reference on the same input, batch 1 and ``--batch``:
  ALA-Net (``configs/ALA-Net/paper.yaml``) and the global baseline (``configs/Global/
  R50-ordinal.yaml``) against a bare ResNet forward (``build_resnet_backbone`` from the same
  config and weights) on the tensor the model's own backbone reads; HandSeg-RAN
  (``configs/HandSeg-RAN/paper.yaml``) against a plain ``GeneralizedRCNN`` Mask R-CNN built from
  the same config, sharing its detector weights (so both find the same detections). Runs are
  interleaved (model, reference, reference, model, ...) under ``torch.inference_mode`` after
  warm-up; medians are compared.
- **training**: seconds per iteration of each ``configs/*/R18-phantom-demo.yaml`` (Detectron2's
  ``SimpleTrainer.run_step``, or ``AMPTrainer`` for fp16), on batches already loaded, so the
  figure is the images/s the data loader has to sustain.
- **loader**: images/s of ``BoneAgeTrainer.build_train_loader(cfg)`` alone (its configured
  workers), against the training images/s of the same config.
- **convert**: ``convert_split`` on an RSNA-sized input (12,611 rows with keypoints, masks off);
  the input generation is not timed.

Training and loader data: a small phantom set generated and converted in a temporary folder, or
``<--datasets-root>/phantom/coco/train.json`` when that option is given.

Exit status: 0 when every measurement ran (a MISS is a result, not a failure), 1 when one
raised (its error is in the json and the table), 2 on bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import itertools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from boneage_d2.io.atomic import atomic_write_json
from boneage_d2.utils.argtypes import int_at_least, number_above

__all__ = [
    "INFERENCE_CASES",
    "RSNA_TRAIN_ROWS",
    "TRAINING_CONFIGS",
    "bench_convert",
    "build_convert_input",
    "build_parser",
    "cli",
    "machine_info",
    "main",
    "plain_mask_rcnn",
    "synthetic_inputs",
    "time_interleaved",
]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = "outputs/benchmark/benchmark.json"
SECTIONS = ("inference", "training", "loader", "convert")
RSNA_TRAIN_ROWS = 12_611  # rows of the RSNA training label file
NUM_KEYPOINTS = 17  # BoNet hand keypoints per image
MIN_REPEATS = 3  # a time budget never cuts a comparison below this many timed pairs
LOADER_TARGET = 3.0  # loader images/s must be >= this many times the training images/s


@dataclass(frozen=True)
class InferenceCase:
    """One model-versus-reference comparison: ``reference`` names a builder in ``REFERENCES``."""

    name: str
    config: str  # relative to the repository root
    reference: str
    max_ratio: float  # target: model median / reference median <= this


INFERENCE_CASES = (
    InferenceCase("ALA-Net", "configs/ALA-Net/paper.yaml", "backbone", 1.25),
    InferenceCase("HandSeg-RAN", "configs/HandSeg-RAN/paper.yaml", "mask_rcnn", 1.5),
    # The global baseline is pooling + head over the backbone: held to ALA-Net's bound.
    InferenceCase("Global", "configs/Global/R50-ordinal.yaml", "backbone", 1.25),
)
TRAINING_CONFIGS = (
    "configs/Global/R18-phantom-demo.yaml",
    "configs/ALA-Net/R18-phantom-demo.yaml",
    "configs/HandSeg-RAN/R18-phantom-demo.yaml",
)

# --quick: tiny inputs and narrow networks (R18, 32-channel heads), so that a run takes seconds:
# it checks the tool, its numbers say little about the models (for the tests).
QUICK_INFERENCE_OPTS = [
    "BONEAGE.INPUT.LONG_SIDE_TEST", 96,
    "BONEAGE.INPUT.LONG_SIDE_TRAIN", 96,
    "BONEAGE.INPUT.RANDOM_SCALE", (1.0, 1.0),
    "MODEL.RESNETS.DEPTH", 18,
    "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
    "MODEL.FPN.OUT_CHANNELS", 32,
    "MODEL.RPN.PRE_NMS_TOPK_TEST", 50,
    "MODEL.RPN.POST_NMS_TOPK_TEST", 20,
    "MODEL.ROI_BOX_HEAD.CONV_DIM", 32,
    "MODEL.ROI_BOX_HEAD.FC_DIM", 64,
    "MODEL.ROI_MASK_HEAD.CONV_DIM", 32,
    "TEST.DETECTIONS_PER_IMAGE", 2,
    "BONEAGE.ALANET.LOCAL_CHANNELS", 32,
    "BONEAGE.RAN.INPUT_SIZE", 32,
    "BONEAGE.RAN.STEM_CHANNELS", 16,
    "BONEAGE.RAN.STAGE_CHANNELS", [32, 32, 32],
    "BONEAGE.RAN.OUT_CHANNELS", 32,
    "BONEAGE.HANDSEG.MAX_HANDS_TEST", 1,
]  # fmt: skip
QUICK_TRAINING_OPTS = [
    "SOLVER.IMS_PER_BATCH", 2,
    "BONEAGE.INPUT.LONG_SIDE_TRAIN", 96,
    "BONEAGE.INPUT.LONG_SIDE_TEST", 96,
    "BONEAGE.INPUT.RANDOM_SCALE", (1.0, 1.0),
    "BONEAGE.RAN.INPUT_SIZE", 32,
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", 50,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 16,
]  # fmt: skip


class UsageError(Exception):
    """Bad command-line input; ``main`` prints it as one ``error:`` line and returns 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print the usage and exit
        raise UsageError(message)


@dataclass
class Settings:
    """Sizes and repeats of one run (the defaults, or the ``--quick`` ones)."""

    batches: tuple[int, ...]
    warmup: int
    repeats: int
    budget_s: float
    train_warmup: int
    train_iters: int
    loader_batches: int
    num_images: int
    image_long_side_px: int
    convert_rows: int
    inference_opts: list = field(default_factory=list)
    training_opts: list = field(default_factory=list)


def _settings(args: argparse.Namespace) -> Settings:
    q = args.quick
    return Settings(
        batches=tuple(sorted({1, args.batch or (2 if q else 8)})),
        warmup=1 if args.warmup is None else args.warmup,
        repeats=args.repeats or (2 if q else 7),
        budget_s=args.budget_s if args.budget_s is not None else (5.0 if q else 60.0),
        train_warmup=1 if q else 2,
        train_iters=args.train_iters or (2 if q else 5),
        loader_batches=args.loader_batches or (3 if q else 8),
        num_images=args.num_images or (8 if q else 64),
        image_long_side_px=128 if q else 512,
        convert_rows=args.convert_rows or (40 if q else RSNA_TRAIN_ROWS),
        inference_opts=list(QUICK_INFERENCE_OPTS) if q else [],
        training_opts=list(QUICK_TRAINING_OPTS) if q else [],
    )


# ---------------------------------------------------------------------------------- progress
_T0 = time.perf_counter()


def _log(message: str) -> None:
    print(f"[benchmark {time.perf_counter() - _T0:6.0f}s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- timing
def time_interleaved(
    calls: Mapping[str, Callable[[], object]],
    warmup: int,
    repeats: int,
    *,
    sync: Callable[[], None] = lambda: None,
    budget_s: float | None = None,
) -> dict[str, list[float]]:
    """Seconds of each call per repeat, the calls interleaved to share the machine's drift.

    Every call runs ``warmup`` times untimed, then up to ``repeats`` timed rounds; the order
    alternates (A B, B A, ...) so neither call always runs right after the other. After
    ``MIN_REPEATS`` rounds, no new round starts once ``budget_s`` seconds have passed. ``sync``
    (e.g. ``torch.cuda.synchronize``) runs before and after each timed call.
    """
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for i in range(repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            sync()
            t0 = time.perf_counter()
            calls[name]()
            sync()
            times[name].append(time.perf_counter() - t0)
        if budget_s is not None and i + 1 >= MIN_REPEATS and time.perf_counter() - start > budget_s:
            break
    return times


def _device_sync(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    import torch

    if precision == "fp16":
        return torch.autocast(device.split(":")[0], dtype=torch.float16)
    return contextlib.nullcontext()


def _precisions(device: str) -> tuple[str, ...]:
    return ("fp32", "fp16") if device.startswith("cuda") else ("fp32",)


# ---------------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(devices: Sequence[str]) -> dict[str, Any]:
    """CPU model and cores, Python/torch/Detectron2 versions, torch threads, GPU name."""
    import detectron2
    import torch

    from boneage_d2.version import __version__

    gpu = torch.cuda.get_device_name(0) if any(d.startswith("cuda") for d in devices) else None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "detectron2": detectron2.__version__,
        "boneage_d2": __version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda": torch.version.cuda if gpu else None,
        "gpu": gpu,
        "devices": list(devices),
    }


def _load_average() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


# ---------------------------------------------------------------------------------- inference
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


def plain_mask_rcnn(cfg, model):
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


def _load_cfg(config: str, device: str, opts: Sequence) -> Any:
    from boneage_d2.engine import load_config

    flat = [str(v) if not isinstance(v, str) else v for v in opts]
    return load_config(os.fspath(REPO / config), [*flat, "MODEL.DEVICE", device])


def _on_device(inputs: list[dict], device: str) -> list[dict]:
    return [{**x, "image": x["image"].to(device)} for x in inputs]


def _attempt(row: dict, measure: Callable[..., dict], *args: Any) -> dict:
    """``row`` updated with ``measure(*args)``, or with ``"error"`` when it raises: one failed
    measurement must not lose the others' results."""
    try:
        row.update(measure(*args))
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {e}"
        _log(f"  error: {row['error']}")
    return row


def _compare(model, bind: Binder, inputs: list[dict], device: str, precision: str, s: Settings):
    """Interleaved timings of ``model(inputs)`` and its reference; medians and their ratio."""
    import torch

    with torch.inference_mode(), _autocast(device, precision):
        ref_call, ref_shape = bind(inputs)
        model_shape = list(model.preprocess_image(inputs).tensor.shape)
        times = time_interleaved(
            {"model": lambda: model(inputs), "reference": ref_call},
            s.warmup,
            s.repeats,
            sync=_device_sync(device),
            budget_s=s.budget_s,
        )
    model_s, ref_s = (statistics.median(times[k]) for k in ("model", "reference"))
    _log(f"  {_fmt_s(model_s)} vs {_fmt_s(ref_s)}: {model_s / ref_s:.2f}x")
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


def bench_inference(devices: Sequence[str], s: Settings) -> list[dict]:
    """Every ``INFERENCE_CASES`` comparison on every device, precision and batch size."""
    import torch
    from detectron2.modeling import build_model

    rows = []
    for case, device in itertools.product(INFERENCE_CASES, devices):
        cfg = _load_cfg(case.config, device, s.inference_opts)
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        ref_name, bind = REFERENCES[case.reference](cfg, model)
        for precision, batch in itertools.product(_precisions(device), s.batches):
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
            _log(f"inference: {case.name} vs {ref_name}, {device} {precision}, batch {batch} ...")
            inputs = _on_device(synthetic_inputs(cfg.BONEAGE.INPUT.LONG_SIDE_TEST, batch), device)
            _attempt(row, _compare, model, bind, inputs, device, precision, s)
            if "ratio" in row:
                row["passed"] = row["ratio"] <= case.max_ratio
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- data
def _register(json_file: Path) -> str:
    """Register a converted training json under a name unique to its path; return the name."""
    from detectron2.data import DatasetCatalog

    from boneage_d2.data.catalog import register_boneage_split

    digest = hashlib.sha1(os.fspath(json_file.resolve()).encode()).hexdigest()[:10]
    name = f"benchmark_{digest}_train"
    if name not in DatasetCatalog.list():
        register_boneage_split(name, json_file)
    return name


def make_training_data(root: Path, num_images: int, long_side_px: int, seed: int = 0) -> Path:
    """Generate ``num_images`` phantom training images under ``root`` and convert them (with
    keypoints and masks); returns the converted json."""
    from boneage_d2.convert import convert_split, find_raw_splits
    from boneage_d2.phantom import PhantomConfig, generate_phantom_dataset

    raw = root / "raw"
    generate_phantom_dataset(
        raw, PhantomConfig(image_long_side=long_side_px), num_images, 0, 0, seed, progress=False
    )
    train = next(sp for sp in find_raw_splits(raw) if sp.name == "train")
    out = root / "coco" / "train.json"
    convert_split(
        train.labels,
        train.images,
        out,
        keypoints=train.keypoints,
        mask_dir=raw / "masks",
        split_name="train",
        progress=False,
    )
    return out


def _loader_run(cfg, count: int) -> dict:
    """Images/s of ``BoneAgeTrainer.build_train_loader(cfg)`` over ``count`` batches, after one
    untimed batch (worker start-up); ``"batches"`` holds every batch drawn."""
    from boneage_d2.engine import BoneAgeTrainer

    loader_iter = iter(BoneAgeTrainer.build_train_loader(cfg))
    batches = [next(loader_iter)]
    t0 = time.perf_counter()
    batches += [next(loader_iter) for _ in range(count)]
    seconds = time.perf_counter() - t0
    del loader_iter  # stops the worker processes
    images_per_s = sum(len(b) for b in batches[1:]) / seconds
    _log(f"  {images_per_s:.1f} images/s")
    return {
        "workers": cfg.DATALOADER.NUM_WORKERS,
        "batch": cfg.SOLVER.IMS_PER_BATCH,
        "batches_timed": count,
        "seconds": seconds,
        "images_per_s": images_per_s,
        "batches": batches,
    }


def _training_run(cfg, batches: list, device: str, precision: str, s: Settings) -> dict:
    """Median seconds per ``run_step`` of Detectron2's trainer on ``batches`` (cycled)."""
    import torch
    from detectron2.engine import AMPTrainer, SimpleTrainer
    from detectron2.utils.events import EventStorage

    from boneage_d2.engine import BoneAgeTrainer

    torch.manual_seed(0)
    model = BoneAgeTrainer.build_model(cfg)
    optimizer = BoneAgeTrainer.build_optimizer(cfg, model)
    data = itertools.cycle(batches)
    trainer = (
        AMPTrainer(model, data, optimizer, precision=torch.float16)
        if precision == "fp16"
        else SimpleTrainer(model, data, optimizer)
    )
    sync = _device_sync(device)
    times = []
    with EventStorage(0) as storage:
        for i in range(s.train_warmup + s.train_iters):
            trainer.iter = storage.iter = i
            sync()
            t0 = time.perf_counter()
            trainer.run_step()
            sync()
            if i >= s.train_warmup:
                times.append(time.perf_counter() - t0)
    executor = getattr(trainer, "concurrent_executor", None)  # newer Detectron2 only
    if executor is not None:
        executor.shutdown()
    s_per_iter = statistics.median(times)
    batch = cfg.SOLVER.IMS_PER_BATCH
    _log(f"  {s_per_iter:.3f} s/iter, {batch / s_per_iter:.1f} images/s (batch {batch})")
    return {
        "batch": batch,
        "iters": len(times),
        "s_per_iter": s_per_iter,
        "iters_per_s": 1.0 / s_per_iter,
        "images_per_s": batch / s_per_iter,
        "samples_s": times,
    }


def _training_rows(
    cfg, name: str, config: str, batches: list, devices: Sequence[str], s: Settings
) -> list[dict]:
    """Training speed of ``cfg`` on every device and precision."""
    rows = []
    for device in devices:
        for precision in _precisions(device):
            row = {"case": f"{name} ({device} {precision})", "model": name, "config": config}
            row.update(device=device, precision=precision)
            _log(f"training: {name}, {device} {precision} ...")
            dcfg = cfg.clone()
            dcfg.MODEL.DEVICE = device
            rows.append(_attempt(row, _training_run, dcfg, batches, device, precision, s))
    return rows


def bench_training_and_loader(
    dataset: str, devices: Sequence[str], s: Settings, sections: set[str]
) -> tuple[list[dict], list[dict]]:
    """Per ``TRAINING_CONFIGS`` entry: the loader alone (CPU), then training steps on its
    batches; the loader's images/s is compared with the fastest training images/s."""
    training, loaders = [], []
    for config in TRAINING_CONFIGS:
        name = f"{Path(config).parent.name} R18 demo"
        opts = [*s.training_opts, "DATASETS.TRAIN", f"('{dataset}',)", "DATASETS.TEST", "()"]
        cfg = _load_cfg(config, "cpu", opts)
        loader_row: dict[str, Any] = {
            "case": f"{name} (workers: {cfg.DATALOADER.NUM_WORKERS})",
            "model": name,
            "config": config,
            "target": f">= {LOADER_TARGET}x",
        }
        count = s.loader_batches if "loader" in sections else s.train_warmup + s.train_iters
        _log(f"loader: {name}, {cfg.DATALOADER.NUM_WORKERS} workers ...")
        batches = _attempt(loader_row, _loader_run, cfg, count).pop("batches", [])
        if "training" not in sections:
            loaders.append(loader_row)
            continue
        rows = _training_rows(cfg, name, config, batches, devices, s) if batches else []
        failed = {"case": name, "model": name, "config": config, "error": "data loader failed"}
        training += rows or [failed]
        done = [r for r in rows if "images_per_s" in r]
        if "loader" in sections and done and "images_per_s" in loader_row:
            fastest = max(done, key=lambda r: r["images_per_s"])
            ratio = loader_row["images_per_s"] / fastest["images_per_s"]
            loader_row.update(
                training_images_per_s=fastest["images_per_s"],
                training_device=f"{fastest['device']} {fastest['precision']}",
                ratio=ratio,
                passed=ratio >= LOADER_TARGET,
            )
        if "loader" in sections:
            loaders.append(loader_row)
    return training, loaders


# ---------------------------------------------------------------------------------- convert
def build_convert_input(root: Path, rows: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write an RSNA-like training split under ``root``; returns (labels, images, keypoints).

    A label CSV (``id,boneage,male``), one small but real PNG per row (48-160 px per side, so
    every header is really read) and a BoNet-style 17-point keypoint json covering every image.
    """
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1377, 1377 + rows)
    ages = rng.integers(1, 229, size=rows)
    males = rng.integers(0, 2, size=rows).astype(bool)
    labels = root / "boneage-training-dataset.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "boneage", "male"])
        for i, a, m in zip(ids, ages, males):
            w.writerow([int(i), int(a), "True" if m else "False"])
    kp_images, kp_anns = [], []
    for n, rid in enumerate(ids.tolist()):
        width, height = (int(v) for v in rng.integers(48, 161, size=2))
        yy, xx = np.mgrid[0:height, 0:width]
        img = ((xx * 3 + yy * 2 + n) % 200 + 30).astype(np.uint8)
        cv2.imwrite(os.fspath(images / f"{rid}.png"), img)
        xs = rng.uniform(0, width - 1, NUM_KEYPOINTS)
        ys = rng.uniform(0, height - 1, NUM_KEYPOINTS)
        kps = [v for x, y in zip(xs, ys) for v in (round(float(x), 2), round(float(y), 2), 2)]
        kp_images.append({"id": n, "file_name": f"{rid}.png", "width": width, "height": height})
        kp_anns.append(
            {
                "id": n,
                "image_id": n,
                "category_id": 1,
                "bbox": [1.0, 1.0, width - 2.0, height - 2.0],
                "keypoints": kps,
                "num_keypoints": NUM_KEYPOINTS,
            }
        )
    keypoints = root / "RSNA_Anatomical_ROIs_Training.json"
    categories = [{"id": 1, "name": "hand", "keypoints": [], "skeleton": []}]
    keypoints.write_text(
        json.dumps({"images": kp_images, "annotations": kp_anns, "categories": categories})
    )
    return labels, images, keypoints


def bench_convert(rows: int, workers: int = 1, seed: int = 0) -> dict[str, Any]:
    """Seconds of one ``convert_split`` (masks off) on ``build_convert_input(rows)``.

    Timed: the whole call (reading and checking the CSV and keypoints, every PNG header and
    trailer, building the annotations, writing json and report). Not timed: the input.
    """
    from boneage_d2.convert import convert_split

    with tempfile.TemporaryDirectory(prefix="boneage_bench_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        labels, images, keypoints = build_convert_input(root, rows, seed)
        build_s = time.perf_counter() - t0
        out = root / "out" / "train.json"
        t0 = time.perf_counter()
        report = convert_split(
            labels, images, out, keypoints=keypoints, workers=workers, progress=False
        )
        seconds = time.perf_counter() - t0
        json_mb = out.stat().st_size / 1e6
    _log(f"  {seconds:.2f} s, {rows / seconds:,.0f} rows/s")
    return {
        "rows": rows,
        "workers": workers,
        "input_build_s": build_s,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "json_mb": json_mb,
        "summary": report.summary(),
    }


# ---------------------------------------------------------------------------------- report
def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _result(row: dict) -> str:
    if "error" in row:
        return "ERROR"
    if "passed" not in row:
        return "-"
    return "PASS" if row["passed"] else "MISS"


def _training_reference(r: dict) -> str:
    if "ratio" not in r:
        return ""
    return f"{r['training_images_per_s']:.1f} img/s training ({r['training_device']})"


# section -> (measured, reference) cells of a successful measurement
CELLS: dict[str, Callable[[dict], tuple[str, str]]] = {
    "inference": lambda r: (_fmt_s(r["model_s"]), f"{_fmt_s(r['reference_s'])} {r['reference']}"),
    "training": lambda r: (f"{r['s_per_iter']:.3f} s/iter = {r['images_per_s']:.1f} img/s", ""),
    "loader": lambda r: (f"{r['images_per_s']:.1f} img/s", _training_reference(r)),
    "convert": lambda r: (f"{r['seconds']:.2f} s = {r['rows_per_s']:,.0f} rows/s", ""),
}


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per measurement: section, case, measured, reference, ratio, target, result."""
    rows = []
    for section, cells in CELLS.items():
        entries = results.get(section) or []
        for r in [entries] if isinstance(entries, dict) else entries:
            measured, reference = (r["error"][:70], "") if "error" in r else cells(r)
            ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
            target = r.get("target", "")
            rows.append([section, r["case"], measured, reference, ratio, target, _result(r)])
    return rows


def format_table(results: dict[str, Any]) -> str:
    """The printed summary table (``tabulate``)."""
    from tabulate import tabulate

    headers = ["section", "case", "measured", "reference", "ratio", "target", "result"]
    return tabulate(table_rows(results), headers=headers)


# ---------------------------------------------------------------------------------- CLI
_positive_int = int_at_least(1)
_nonneg_int = int_at_least(0)
_nonneg_float = number_above(0, inclusive=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``benchmark`` (exposed for documentation and tests)."""
    p = _Parser(
        prog="benchmark",
        description="Inference, training, data-loader and conversion costs, with ratios.",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help=f"sections to run, repeatable or comma-separated: {', '.join(SECTIONS)} [all]",
    )
    p.add_argument("--output", default=DEFAULT_OUTPUT, help=f"json written [{DEFAULT_OUTPUT}]")
    p.add_argument("--quick", action="store_true", help="tiny sizes and repeats (tests, smoke)")
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads [torch's default]")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: the CPU, and the GPU when CUDA is available [auto]",
    )
    p.add_argument(
        "--datasets-root",
        help="use <root>/phantom/coco/train.json for training and loader "
        "[default: generate a small phantom set in a temporary folder]",
    )
    p.add_argument("--batch", type=_positive_int, help="larger inference batch [8; quick 2]")
    p.add_argument("--repeats", type=_positive_int, help="timed runs per model [7; quick 2]")
    p.add_argument("--warmup", type=_nonneg_int, help="untimed runs per model first [1]")
    p.add_argument(
        "--budget-s",
        type=_nonneg_float,
        help=f"stop repeating a comparison after this many seconds (at least {MIN_REPEATS} "
        "runs) [60; quick 5]",
    )
    p.add_argument("--train-iters", type=_positive_int, help="timed training iterations [5; 2]")
    p.add_argument("--loader-batches", type=_positive_int, help="timed loader batches [8; 3]")
    p.add_argument("--num-images", type=_positive_int, help="phantom training images [64; 8]")
    p.add_argument(
        "--convert-rows",
        type=_positive_int,
        help=f"rows of the conversion input [{RSNA_TRAIN_ROWS:,}; quick 40]",
    )
    p.add_argument(
        "--convert-workers", type=_positive_int, default=1, help="convert_split processes [1]"
    )
    return p


def _sections(values: list[str] | None) -> list[str]:
    if not values:
        return list(SECTIONS)
    chosen = [v.strip() for text in values for v in text.split(",") if v.strip()]
    unknown = sorted({v for v in chosen if v not in SECTIONS})
    if unknown or not chosen:
        raise UsageError(f"--only: unknown section {unknown or values}; choose from {SECTIONS}")
    return [sec for sec in SECTIONS if sec in chosen]


def _check_output(path: Path) -> None:
    """Fail now, not after an hour of measuring, when ``path`` cannot be written."""
    if path.is_dir():
        raise UsageError(f"--output {path}: is a folder, expected a json file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as e:
        raise UsageError(f"--output {path}: cannot write there ({e.strerror or e})") from None


def _datasets_json(root: str | None) -> Path | None:
    if root is None:
        return None
    path = Path(root)
    if not path.is_dir():
        raise UsageError(f"--datasets-root {root}: folder not found")
    json_file = path / "phantom" / "coco" / "train.json"
    if not json_file.is_file():
        raise UsageError(
            f"--datasets-root {root}: {json_file} not found (create it with tools/demo.py, or "
            "tools/make_phantom.py + tools/convert_rsna.py)"
        )
    return json_file


def _devices(choice: str) -> list[str]:
    import torch

    has_gpu = torch.cuda.is_available()
    if choice == "cuda" and not has_gpu:
        raise UsageError("--device cuda: no CUDA GPU is available")
    if choice == "auto":
        return ["cpu", "cuda"] if has_gpu else ["cpu"]
    return [choice]


def _failed(results: dict[str, Any]) -> bool:
    rows = [r for k in ("inference", "training", "loader") for r in results.get(k, [])]
    return any("error" in r for r in rows + [results.get("convert") or {}])


def run(
    args: argparse.Namespace,
    sections: list[str],
    devices: list[str],
    save: Callable[[dict], None] = lambda results: None,
) -> dict[str, Any]:
    """Run the chosen sections; returns the results dict that is written as json. ``save`` is
    called with the results so far after each section (a long run killed midway keeps them)."""
    import torch

    load_before = _load_average()
    if args.threads:
        torch.set_num_threads(args.threads)
    s = _settings(args)
    results: dict[str, Any] = {
        "machine": machine_info(devices),
        "load_average_before": load_before,
        "settings": {**asdict(s), "sections": sections, "datasets_root": args.datasets_root},
    }
    if "inference" in sections:
        results["inference"] = bench_inference(devices, s)
        save(results)
    wanted = {"training", "loader"} & set(sections)
    if wanted:
        with tempfile.TemporaryDirectory(prefix="boneage_bench_data_") as tmp:
            json_file = _datasets_json(args.datasets_root)
            if json_file is None:
                _log(f"data: {s.num_images} phantom images, {s.image_long_side_px} px ...")
                json_file = make_training_data(Path(tmp), s.num_images, s.image_long_side_px)
            training, loaders = bench_training_and_loader(_register(json_file), devices, s, wanted)
        if "training" in wanted:
            results["training"] = training
        if "loader" in wanted:
            results["loader"] = loaders
        save(results)
    if "convert" in sections:
        _log(f"convert: {s.convert_rows:,} rows ...")
        row = {"case": f"{s.convert_rows:,} rows, masks off, {args.convert_workers} worker(s)"}
        results["convert"] = _attempt(row, bench_convert, s.convert_rows, args.convert_workers)
    results["load_average_after"] = _load_average()
    return results


def _finite(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` (json has no nan/inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _json_writer(output: Path) -> Callable[[dict], None]:
    def save(results: dict) -> None:
        try:
            atomic_write_json(output, _finite(results), indent=1)
        except OSError as e:
            raise UsageError(f"--output {output}: cannot write ({e.strerror or e})") from None

    return save


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 (all measured), 1 (a measurement failed) or 2 (bad input)."""
    try:
        args = build_parser().parse_args(argv)
        sections = _sections(args.only)
        output = Path(args.output)
        _check_output(output)
        _datasets_json(args.datasets_root)
        devices = _devices(args.device)
        save = _json_writer(output)
        results = run(args, sections, devices, save)
        save(results)
    except UsageError as e:
        print(f"benchmark: error: {e}", file=sys.stderr)
        return 2
    print(format_table(results))
    la = results["load_average_before"], results["load_average_after"]
    print(f"\nload average (1, 5, 15 min) before {la[0]}, after {la[1]}; wrote {output}")
    return 1 if _failed(results) else 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
