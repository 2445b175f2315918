"""Training and data-loader sections: seconds per training step, and loader images/s against it.

Training steps run on batches already loaded, so their images/s is what the data loader has to
sustain; the loader alone (its configured workers, on the CPU) is compared with the fastest.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from .settings import Settings, load_cfg
from .timing import attempt, device_sync, log, precisions

__all__ = [
    "LOADER_TARGET",
    "bench_training_and_loader",
    "make_training_data",
    "register_training_json",
]

LOADER_TARGET = 3.0  # loader images/s must be >= this many times the training images/s


def register_training_json(json_file: Path) -> str:
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
    log(f"  {images_per_s:.1f} images/s")
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
    sync = device_sync(device)
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
    log(f"  {s_per_iter:.3f} s/iter, {batch / s_per_iter:.1f} images/s (batch {batch})")
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
        for precision in precisions(device):
            row = {"case": f"{name} ({device} {precision})", "model": name, "config": config}
            row.update(device=device, precision=precision)
            log(f"training: {name}, {device} {precision} ...")
            dcfg = cfg.clone()
            dcfg.MODEL.DEVICE = device
            rows.append(attempt(row, _training_run, dcfg, batches, device, precision, s))
    return rows


def _measure(
    configs: Sequence[str],
    dataset: str,
    devices: Sequence[str],
    s: Settings,
    sections: Collection[str],
    root: Path,
) -> tuple[list[dict], list[dict]]:
    """Per config: the loader alone (CPU), then training steps on its batches."""
    training, loaders = [], []
    for config in configs:
        name = f"{Path(config).parent.name} R18 demo"
        opts = [*s.training_opts, "DATASETS.TRAIN", f"('{dataset}',)", "DATASETS.TEST", "()"]
        cfg = load_cfg(root / config, "cpu", opts)
        loader_row: dict[str, Any] = {
            "case": f"{name} (workers: {cfg.DATALOADER.NUM_WORKERS})",
            "model": name,
            "config": config,
            "target": f">= {LOADER_TARGET}x",
        }
        count = s.loader_batches if "loader" in sections else s.train_warmup + s.train_iters
        log(f"loader: {name}, {cfg.DATALOADER.NUM_WORKERS} workers ...")
        batches = attempt(loader_row, _loader_run, cfg, count).pop("batches", [])
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


def bench_training_and_loader(
    configs: Sequence[str],
    devices: Sequence[str],
    s: Settings,
    sections: Collection[str],
    *,
    json_file: Path | None = None,
    root: Path = Path("."),
) -> tuple[list[dict], list[dict]]:
    """``(training rows, loader rows)`` of each config (read under ``root``) on ``json_file``, or
    on a phantom set generated in a temporary folder when it is None. ``sections`` holds
    ``"training"``, ``"loader"`` or both; the loader's images/s is compared with the fastest
    training images/s when both are measured."""
    with tempfile.TemporaryDirectory(prefix="boneage_bench_data_") as tmp:
        if json_file is None:
            log(f"data: {s.num_images} phantom images, {s.image_long_side_px} px ...")
            json_file = make_training_data(Path(tmp), s.num_images, s.image_long_side_px)
        dataset = register_training_json(json_file)
        return _measure(configs, dataset, devices, s, sections, root)
