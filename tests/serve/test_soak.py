"""Soak: K clients against the live service on loopback for about a minute (``BONEAGE_SOAK_S``,
default 60 s; bounded in clients and time). Memory stays flat, the only errors are the intended
503s (each with Retry-After), and the latency percentiles are reported."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from boneage_d2.serve import LiveServer, create_app, load_models  # noqa: E402
from tests.image_bombs import rss_mb  # noqa: E402
from tests.serve.test_service import _save_random_init, png_bytes  # noqa: E402

CLIENTS = 6  # more than the one running + QUEUE_SIZE waiting: some 503s are intended
QUEUE_SIZE = 2
SOAK_S = min(float(os.environ.get("BONEAGE_SOAK_S", "60")), 120.0)
RSS_GROWTH_BOUND_MB = 40


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@pytest.mark.slow
def test_soak_memory_flat_only_intended_503s(tmp_path_factory, record_property):
    models = load_models([_save_random_init("global", tmp_path_factory.mktemp("soak") / "g")])
    rng = np.random.default_rng(0)
    films = [png_bytes(rng.integers(0, 256, (480, 400), dtype=np.uint8)) for _ in range(4)]
    app = create_app(models, queue_size=QUEUE_SIZE, request_timeout_s=5.0)
    results: list[tuple[int, float, str | None]] = []
    rss: list[tuple[float, float]] = []
    stop = threading.Event()

    def client(k: int) -> None:
        with httpx.Client(base_url=live.url, timeout=30) as c:
            i = k
            while not stop.is_set():
                t0 = time.perf_counter()
                files = {"file": ("f.png", films[i % len(films)])}
                r = c.post("/predict", files=files, data={"sex": "MF"[i % 2]})
                results.append(
                    (r.status_code, time.perf_counter() - t0, r.headers.get("Retry-After"))
                )
                if r.status_code == 503:
                    time.sleep(0.05)  # a polite client would wait Retry-After; keep the pressure on
                i += CLIENTS

    with LiveServer(app) as live:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() - t_start < SOAK_S:
            rss.append((time.monotonic() - t_start, rss_mb()))
            time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=60)

    statuses = {s for s, _, _ in results}
    ok = [lat for s, lat, _ in results if s == 200]
    busy = [ra for s, _, ra in results if s == 503]
    # memory: the last fifth of the run against the fifth after a warm-up fifth
    n = len(rss)
    early = statistics.median(m for _, m in rss[n // 5 : 2 * n // 5])
    late = statistics.median(m for _, m in rss[-max(1, n // 5) :])
    report = {
        "seconds": SOAK_S,
        "clients": CLIENTS,
        "queue_size": QUEUE_SIZE,
        "requests": len(results),
        "ok": len(ok),
        "busy_503": len(busy),
        "p50_ms": round(1000 * _percentile(ok, 0.5), 1),
        "p95_ms": round(1000 * _percentile(ok, 0.95), 1),
        "rss_early_mb": round(early, 1),
        "rss_late_mb": round(late, 1),
    }
    print("soak:", json.dumps(report))
    record_property("soak", report)
    assert statuses <= {200, 503}, statuses
    assert len(ok) > 10 and busy, report
    assert all(ra is not None and int(ra) >= 1 for ra in busy)
    assert late - early <= RSS_GROWTH_BOUND_MB, report
