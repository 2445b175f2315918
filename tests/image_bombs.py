"""Decompression bombs and peak-memory probes for the pixel-budget tests."""

from __future__ import annotations

import functools
import struct
import zlib
from pathlib import Path

__all__ = ["peak_rss_mb", "png_bomb", "reset_peak_rss", "rss_mb"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@functools.lru_cache(maxsize=2)
def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid 8-bit gray PNG of ``width`` x ``height`` black pixels: 875 KB at 30000x30000,
    900 MB once decoded (built once per process, ~4 s)."""
    comp = zlib.compressobj(9)
    block = (b"\x00" * (width + 1)) * 64  # 64 rows, each a filter byte and the pixels
    parts = [comp.compress(block) for _ in range(height // 64)]
    parts += [comp.compress((b"\x00" * (width + 1)) * (height % 64)), comp.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise OSError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where Linux does not
    allow it (the caller then skips)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's peak RSS since the last ``reset_peak_rss`` (MB)."""
    return _status_mb("VmHWM")


def rss_mb() -> float:
    """This process's RSS now (MB)."""
    return _status_mb("VmRSS")
