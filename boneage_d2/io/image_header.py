"""An image's dimensions from its header alone (PNG IHDR, JPEG SOF, TIFF's first IFD), read
before any decoder allocates pixels: a sub-megabyte PNG can declare 30000x30000."""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["DEFAULT_MAX_PIXELS", "ImageSize", "header_size"]

# Refuse images above this many pixels (width x height x frames). Generous for radiographs: the
# largest RSNA film is about 6.8 MP and CR/DR plates reach about 20 MP.
DEFAULT_MAX_PIXELS = 40_000_000

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (SOF0-SOF15 less DHT, JPG and DAC), which carry the frame size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
_TIFF_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class ImageSize:
    """Width and height in pixels, and the number of frames (DICOM multi-frame; 1 otherwise)."""

    width: int
    height: int
    frames: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height * self.frames

    def __str__(self) -> str:
        frames = f" x {self.frames} frames" if self.frames > 1 else ""
        return f"{self.width}x{self.height} pixels{frames}"


def png_ihdr_size(head: bytes) -> ImageSize | None:
    """The size in a PNG's first 33 bytes when they hold a valid IHDR chunk (CRC checked)."""
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    if struct.unpack(">I", head[8:12])[0] != 13:
        return None
    if zlib.crc32(head[12:29]) != struct.unpack(">I", head[29:33])[0]:
        return None
    width, height = struct.unpack(">II", head[16:24])
    return ImageSize(width, height) if width > 0 and height > 0 else None


def _jpeg_size(f: BinaryIO) -> ImageSize | None:
    """Walk the JPEG's marker segments up to its SOF (None at SOS/EOI or a malformed segment)."""
    f.seek(2)
    while True:
        if f.read(1) != b"\xff":
            return None
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker or marker[0] in (0xD9, 0xDA):
            return None
        m = marker[0]
        if m == 0x01 or 0xD0 <= m <= 0xD7:  # markers without a segment
            continue
        raw = f.read(2)
        if len(raw) < 2 or struct.unpack(">H", raw)[0] < 2:
            return None
        length = struct.unpack(">H", raw)[0]
        if m in _JPEG_SOF:
            data = f.read(5)
            if len(data) < 5:
                return None
            _, height, width = struct.unpack(">BHH", data)
            return ImageSize(width, height) if width > 0 and height > 0 else None
        f.seek(length - 2, os.SEEK_CUR)


def _tiff_size(f: BinaryIO, head: bytes) -> ImageSize | None:
    """ImageWidth and ImageLength of a classic TIFF's first IFD (the page decoders read)."""
    order = "<" if head[:4] == b"II*\x00" else ">"
    f.seek(struct.unpack(order + "I", head[4:8])[0])
    raw = f.read(2)
    if len(raw) < 2:
        return None
    count = struct.unpack(order + "H", raw)[0]
    entries = f.read(12 * min(count, _TIFF_MAX_ENTRIES))
    dims: dict[int, int] = {}
    for i in range(len(entries) // 12):
        tag, kind, _, value = struct.unpack(order + "HHI4s", entries[12 * i : 12 * i + 12])
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT) and kind in (3, 4):  # SHORT or LONG
            dims[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: kind - 1])[0]
    w, h = dims.get(_TIFF_WIDTH, 0), dims.get(_TIFF_HEIGHT, 0)
    return ImageSize(w, h) if w > 0 and h > 0 else None


def header_size(f: BinaryIO) -> ImageSize | None:
    """The size a PNG, JPEG or TIFF file object declares in its header, reading only header bytes;
    None for another format or a header these parsers cannot read."""
    f.seek(0)
    head = f.read(33)
    if head.startswith(_PNG_SIGNATURE):
        return png_ihdr_size(head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(f)
    if head[:4] in (b"II*\x00", b"MM\x00*") and len(head) >= 8:
        return _tiff_size(f, head)
    return None
