"""Backpressure: a bounded queue per model and a per-request deadline, answered with 503 and
``Retry-After`` instead of an ever longer wait."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEFAULT_QUEUE_SIZE", "DEFAULT_REQUEST_TIMEOUT_S", "ModelBusy", "ModelQueue"]

DEFAULT_QUEUE_SIZE = 8
DEFAULT_REQUEST_TIMEOUT_S = 30.0


class ModelBusy(Exception):
    """A request refused because its model's queue is full or its deadline passed (a 503);
    ``retry_after_s``: the wait the answer suggests."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelQueue:
    """Admission to one model: at most ``1 + queue_size`` requests hold a place (one in the
    forward pass, ``queue_size`` decoding or waiting for it); another gets ``ModelBusy`` at once.
    A request that has not reached the model within ``timeout_s`` of its start gets
    ``ModelBusy`` too. ``lock``: the model's own, serialising its forward passes."""

    def __init__(self, name: str, lock: threading.Lock, queue_size: int, timeout_s: float):
        if queue_size < 0 or not timeout_s > 0:
            raise ValueError(f"queue size {queue_size} (>= 0), timeout {timeout_s} s (> 0)")
        self.name, self.lock = name, lock
        self.queue_size, self.timeout_s = queue_size, timeout_s
        self._count_lock = threading.Lock()
        self.admitted = 0
        self._forward_s = 0.5  # running mean of one forward pass, for Retry-After

    def retry_after_s(self) -> int:
        """Seconds until the places held now are likely free (at least 1)."""
        return max(1, math.ceil(max(self.admitted, 1) * self._forward_s))

    @contextmanager
    def admit(self) -> Iterator[float]:
        """Hold a place for one request; yields its deadline (``time.monotonic()`` based)."""
        with self._count_lock:
            if self.admitted > self.queue_size:
                raise ModelBusy(
                    f"model {self.name!r} is busy: {self.admitted} requests in progress and at "
                    f"most {self.queue_size} may wait (--queue-size); retry later",
                    self.retry_after_s(),
                )
            self.admitted += 1
        try:
            yield time.monotonic() + self.timeout_s
        finally:
            with self._count_lock:
                self.admitted -= 1

    @contextmanager
    def forward(self, deadline: float) -> Iterator[None]:
        """Run one forward pass under the model's lock, waiting for it until ``deadline``."""
        if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ModelBusy(
                f"model {self.name!r} did not become free within the {self.timeout_s:g} s "
                "request timeout (--request-timeout); retry later",
                self.retry_after_s(),
            )
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._forward_s = 0.8 * self._forward_s + 0.2 * (time.perf_counter() - t0)
            self.lock.release()
