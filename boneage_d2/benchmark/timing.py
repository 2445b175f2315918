"""Timing helpers: interleaved runs, device sync, autocast, progress lines, machine description."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "MIN_REPEATS",
    "attempt",
    "autocast",
    "device_sync",
    "fmt_s",
    "load_average",
    "log",
    "machine_info",
    "precisions",
    "time_interleaved",
]

MIN_REPEATS = 3  # a time budget never cuts a comparison below this many timed pairs
_T0 = time.perf_counter()


def log(message: str) -> None:
    """One progress line on stderr, prefixed with the seconds since the import."""
    print(f"[benchmark {time.perf_counter() - _T0:6.0f}s] {message}", file=sys.stderr, flush=True)


def fmt_s(seconds: float) -> str:
    """``12.3 ms`` below one second, ``1.23 s`` above."""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def attempt(row: dict, measure: Callable[..., dict], *args: Any) -> dict:
    """``row`` updated with ``measure(*args)``, or with ``"error"`` when it raises: one failed
    measurement must not lose the others' results."""
    try:
        row.update(measure(*args))
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {e}"
        log(f"  error: {row['error']}")
    return row


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


def device_sync(device: str) -> Callable[[], None]:
    """``torch.cuda.synchronize`` on a CUDA device (kernels run asynchronously), else a no-op."""
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to float16 for ``"fp16"``, nothing for ``"fp32"``."""
    import torch

    if precision == "fp16":
        return torch.autocast(device.split(":")[0], dtype=torch.float16)
    return contextlib.nullcontext()


def precisions(device: str) -> tuple[str, ...]:
    """Precisions measured on ``device``: fp16 only on a GPU (CPU autocast is not a speed-up)."""
    return ("fp32", "fp16") if device.startswith("cuda") else ("fp32",)


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


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (rounded), or None where the OS has none."""
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None
