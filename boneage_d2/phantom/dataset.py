"""Write a whole phantom dataset in the raw RSNA layout, optionally with worker processes."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .config import DISTRACTOR_KINDS, PhantomConfig
from .layout import MASK_DIR, SPLIT_FILES, split_ids, write_annotations, write_png
from .render import sample_phantom

__all__ = ["generate_phantom_dataset"]

_Task = tuple[PhantomConfig, int, str, int, str]  # cfg, seed, root, image id, split


def _render_and_write(task: _Task) -> dict[str, Any]:
    """Worker: render one image, write its PNG and mask, return its truth record."""
    cfg, seed, root, image_id, split = task
    sample = sample_phantom(cfg, seed, image_id)
    root_p = Path(root)
    folder = SPLIT_FILES[split][1]
    write_png(root_p / folder / f"{image_id}.png", sample.image, cfg.png_compression, True)
    write_png(root_p / MASK_DIR / f"{image_id}_mask.png", sample.mask, cfg.png_compression)
    return {
        "split": split,
        "width": sample.width,
        "height": sample.height,
        "boneage": sample.boneage,
        "appearance_age": sample.appearance_age,
        "male": sample.male,
        "hands": sample.hands,
        "distractors": sample.distractors,
    }


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core; no oversubscription


def _pool_context() -> mp.context.BaseContext:
    """A start method that is safe after cv2/torch started threads in this process.

    Plain ``fork`` copies a parent whose cv2 thread pool may be mid-job and deadlocks in the
    child; ``forkserver`` forks from a clean server that imported this module once (the package
    import is paid once per process, not once per worker as with ``spawn``).
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return mp.get_context("spawn")


def _render_all(tasks: list[_Task], workers: int, progress: bool) -> list[dict[str, Any]]:
    """Run every task (in this process, or in a pool of ``workers``); records in task order."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="phantom", unit="img")
    results: list[dict[str, Any]] = []

    def collect(records: Iterable[dict[str, Any]]) -> None:
        for rec in records:
            results.append(rec)
            if bar is not None:
                bar.update(1)

    if workers == 1 or len(tasks) <= 1:
        collect(map(_render_and_write, tasks))
    else:
        chunk = max(1, min(16, len(tasks) // (4 * workers)))
        with _pool_context().Pool(int(workers), initializer=_worker_init) as pool:
            collect(pool.imap(_render_and_write, tasks, chunksize=chunk))
    if bar is not None:
        bar.close()
    return results


def _summary(
    root: Path,
    cfg: PhantomConfig,
    seed: int,
    ids: dict[str, list[int]],
    results: list[dict[str, Any]],
    workers: int,
    seconds: tuple[float, float],
) -> dict[str, Any]:
    """Counts, id ranges, timing (render, total), distractor counts and label statistics."""
    render_s, total_s = seconds
    n = len(results)
    counts = {k: sum(k in r["distractors"] for r in results) for k in DISTRACTOR_KINDS}
    ages = np.array([r["boneage"] for r in results]) if n else np.zeros(0)
    return {
        "output_dir": str(root),
        "seed": int(seed),
        "num_images": n,
        "splits": {s: len(v) for s, v in ids.items()},
        "id_ranges": {s: [v[0], v[-1]] if v else [] for s, v in ids.items()},
        "image_long_side": int(cfg.image_long_side),
        "workers": int(workers),
        "render_seconds": round(render_s, 3),
        "total_seconds": round(total_s, 3),
        "images_per_second": round(n / render_s, 2) if n and render_s > 0 else 0.0,
        "male_fraction": round(float(np.mean([r["male"] for r in results])), 4) if n else 0.0,
        "boneage_mean": round(float(ages.mean()), 3) if n else 0.0,
        "boneage_sd": round(float(ages.std()), 3) if n else 0.0,
        "distractor_counts": counts,
    }


def generate_phantom_dataset(
    output_dir: str | os.PathLike,
    cfg: PhantomConfig,
    num_train: int,
    num_val: int,
    num_test: int,
    seed: int,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a phantom dataset in the raw RSNA layout of ``docs/data.md`` under ``output_dir``.

    Files: the three label files with their published headers (training ``id,boneage,male``
    True/False, validation ``Image ID,male,Bone Age (months)``, test ``Case ID,Sex`` M/F), the
    test ground truth ``Bone age ground truth.xlsx`` (one-decimal months), PNG folders,
    ``RSNA_Anatomical_ROIs_{Training,Validation,Test}.json`` (BoNet COCO keypoints of the primary
    hand, COCO convention = truth - 0.5), ``masks/<id>_mask.png`` (255 = any hand) and
    ``phantom_truth.json`` (continuous coordinates, unrounded labels). Training and validation
    ages are written as integer months, as RSNA publishes them.

    Same ``seed`` and ``cfg`` give byte-identical files for any ``workers``. ``workers > 1`` uses
    a process pool (``forkserver``; a calling script needs the usual ``if __name__ ==
    "__main__":`` guard); ``progress`` shows a tqdm bar. Every file is written atomically.
    Returns a summary dict (counts, id ranges, timing, distractor counts, label statistics).
    """
    cfg = dataclasses.replace(cfg, distractor_probs=dict(cfg.distractor_probs)).validate()
    for name, n in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
        if int(n) < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    ids = split_ids(int(num_train), int(num_val), int(num_test))
    tasks = [(cfg, int(seed), str(root), i, split) for split, lst in ids.items() for i in lst]
    for split in ids:
        (root / SPLIT_FILES[split][1]).mkdir(parents=True, exist_ok=True)
    (root / MASK_DIR).mkdir(parents=True, exist_ok=True)

    workers = max(1, min(int(workers), len(tasks)))  # never more processes than images
    t0 = time.perf_counter()
    results = _render_all(tasks, workers, progress)
    render_s = time.perf_counter() - t0
    write_annotations(root, int(seed), {task[3]: rec for task, rec in zip(tasks, results)})
    total_s = time.perf_counter() - t0
    return _summary(root, cfg, seed, ids, results, workers, (render_s, total_s))
