"""Running the app: a uvicorn server in a background thread on a loopback port (tests, tools)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

__all__ = ["LiveServer", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LiveServer:
    """``uvicorn.Server`` for ``app`` in a daemon thread; a context manager that returns itself
    once the server accepts connections and stops it on exit.

        with LiveServer(create_app(models)) as server:
            httpx.get(server.url + "/health")
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None, **config):
        self.host, self.port = host, port or free_port(host)
        cfg = uvicorn.Config(app, host=host, port=self.port, log_level="warning", **config)
        self.server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> LiveServer:
        """Start serving; ``RuntimeError`` when it is not up within ``timeout_s``."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
