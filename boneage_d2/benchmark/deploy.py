"""Deployment costs: exported graphs against the eager model and a bare ResNet, and the web
service's throughput and latency under concurrent clients (CPU)."""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .inference import _backbone_reference, synthetic_inputs
from .settings import load_cfg
from .timing import log, time_interleaved

__all__ = ["bench_exported", "bench_service", "deploy_markdown"]


def bench_exported(config: str | Path, warmup: int, repeats: int, budget_s: float) -> dict:
    """Batch-1 CPU seconds of the eager model, its TorchScript and ONNX Runtime graphs and a
    bare ResNet forward on the tensor the model's backbone reads (random-init weights, the
    config's test size); medians and ratios to the bare ResNet and to the eager model."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from detectron2.modeling import build_model

    from ..export import export_model

    cfg = load_cfg(config, "cpu", [])
    model = build_model(cfg).eval()
    inputs = synthetic_inputs(int(cfg.BONEAGE.INPUT.LONG_SIDE_TEST), 1)
    image, male = inputs[0]["image"].float(), torch.tensor(1.0)
    ref_name, bind = _backbone_reference(cfg, model)
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        info = export_model(model, image, True, tmp)
        ts = torch.jit.load(str(Path(tmp) / "model.ts")).eval()
        sess = ort.InferenceSession(
            str(Path(tmp) / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        feed = {"image": image.numpy(), "male": np.array(1.0, np.float32)}
        ref_call, _ = bind(inputs)
        calls = {
            "eager": lambda: model(inputs),
            "torchscript": lambda: ts(image, male),
            "onnxruntime": lambda: sess.run(None, feed),
            "reference": ref_call,
        }
        times = time_interleaved(calls, warmup, repeats, budget_s=budget_s)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in ("eager", "torchscript", "onnxruntime"):
        log(f"  {k}: {med[k] * 1000:.0f} ms = {med[k] / med['reference']:.2f}x {ref_name}")
    return {
        "config": str(config),
        "meta_architecture": info["meta_architecture"],
        "image_hw": list(image.shape[-2:]),
        "reference": ref_name,
        "repeats": len(times["eager"]),
        "median_s": med,
        "ratio_to_reference": {k: med[k] / med["reference"] for k in med if k != "reference"},
        "speedup_vs_eager": {k: med["eager"] / med[k] for k in ("torchscript", "onnxruntime")},
    }


def _png(long_side: int, seed: int) -> bytes:
    import cv2

    x = synthetic_inputs(long_side, seed + 1)[seed]["image"][0].numpy()
    ok, buf = cv2.imencode(".png", x)
    return buf.tobytes()


def bench_service(
    configs: dict[str, str | Path], requests: int, clients: tuple[int, ...] = (1, 4)
) -> list[dict]:
    """Requests/s and p50 / p95 latency of ``POST /models/{name}/predict`` on a live loopback
    server over ``configs`` (random-init weights), ``requests`` per client count, the requests
    spread round-robin over the models."""
    import httpx

    from ..engine.predictor import BoneAgePredictor
    from ..serve.app import create_app
    from ..serve.models import ServedModel
    from ..serve.server import LiveServer

    models = {}
    for name, config in configs.items():
        cfg = load_cfg(config, "cpu", [])
        cfg.MODEL.WEIGHTS = ""
        models[name] = ServedModel(name, BoneAgePredictor(cfg), str(config), "(random init)")
    long_side = 512
    bodies = [_png(long_side, i) for i in range(4)]
    names = list(models)
    rows = []
    with LiveServer(create_app(models)) as server:

        def ask(i: int) -> float:
            with httpx.Client(base_url=server.url, timeout=300) as c:
                t0 = time.perf_counter()
                url = f"/models/{names[i % len(names)]}/predict"
                r = c.post(url, files={"file": ("a.png", bodies[i % 4])}, data={"sex": "M"})
                r.raise_for_status()
                return time.perf_counter() - t0

        for _ in range(2):  # warm-up, untimed
            ask(0), ask(1)
        for n in clients:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                lat = sorted(pool.map(ask, range(requests)))
            wall = time.perf_counter() - t0
            row = {
                "clients": n,
                "requests": requests,
                "models": names,
                "upload_long_side": long_side,
                "requests_per_s": requests / wall,
                "p50_ms": 1000 * statistics.median(lat),
                "p95_ms": 1000 * lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))],
            }
            log(
                f"  {n} client(s): {row['requests_per_s']:.2f} req/s, p50 {row['p50_ms']:.0f} ms, "
                f"p95 {row['p95_ms']:.0f} ms"
            )
            rows.append(row)
    return rows


def deploy_markdown(exported: list[dict], service: list[dict], machine: dict[str, Any]) -> str:
    """The two tables of ``docs/benchmark.md``'s deployment section."""
    lines = [
        f"Machine: {machine.get('cpu_model')}, {machine.get('cpus_usable')} usable cores, "
        f"torch {machine.get('torch')} ({machine.get('torch_threads')} threads).",
        "",
        "| model (config, input) | eager | TorchScript | ONNX Runtime "
        "| vs bare ResNet: eager / TS / ORT |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in exported:
        m, q = r["median_s"], r["ratio_to_reference"]
        lines.append(
            f"| {r['meta_architecture']} (`{Path(r['config']).name}`, {r['image_hw'][0]}x"
            f"{r['image_hw'][1]}) | {1000 * m['eager']:.0f} ms | {1000 * m['torchscript']:.0f} ms "
            f"| {1000 * m['onnxruntime']:.0f} ms | {q['eager']:.2f}x / {q['torchscript']:.2f}x / "
            f"{q['onnxruntime']:.2f}x |"
        )
    lines += [
        "",
        "| service: clients | requests | requests/s | p50 | p95 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in service:
        lines.append(
            f"| {r['clients']} | {r['requests']} | {r['requests_per_s']:.2f} | "
            f"{r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms |"
        )
    return "\n".join(lines) + "\n"
