"""Reading radiographs: header-only sizes, 8/16-bit PNG/JPEG and DICOM with windowing,
corrupt-file errors."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "DICOM_SUFFIXES",
    "ImageReadError",
    "is_dicom",
    "check_image_complete",
    "read_image_size",
    "read_radiograph",
    "window_to_uint8",
]

# A PNG ends with an empty IEND chunk whose CRC is fixed: these 8 bytes close every complete file.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TRAILER = b"IEND\xaeB`\x82"
_JPEG_SIGNATURE = b"\xff\xd8"
_JPEG_TRAILER = b"\xff\xd9"
DICOM_SUFFIXES = (".dcm", ".dicom")
_DICOM_MAGIC_OFFSET = 128  # a DICOM file: 128-byte preamble, then b"DICM"
# How far from the end the trailer is searched (a few writers append padding after it).
_TRAILER_SEARCH_BYTES = 1024


class ImageReadError(OSError):
    """An image that is missing, unreadable or truncated; the message names the file."""


def _png_ihdr_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's first 33 bytes when they hold a valid IHDR chunk, else None."""
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    if struct.unpack(">I", head[8:12])[0] != 13:
        return None
    if zlib.crc32(head[12:29]) != struct.unpack(">I", head[29:33])[0]:
        return None
    width, height = struct.unpack(">II", head[16:24])
    return (width, height) if width > 0 and height > 0 else None


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file header, without decoding pixels.

    PNGs are answered from their IHDR chunk (checked against its CRC); anything else, or a PNG
    whose IHDR does not check out, goes through PIL, which raises for a bad header.
    """
    try:
        with open(path, "rb") as f:
            size = _png_ihdr_size(f.read(33))
        if size is not None:
            return size
    except FileNotFoundError as e:
        raise ImageReadError(f"{path}: image file not found") from e
    except OSError as e:
        raise ImageReadError(f"{path}: unreadable image file ({e})") from e
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError as e:
        raise ImageReadError(f"{path}: image file not found") from e
    except Exception as e:  # PIL raises several types for bad headers
        raise ImageReadError(f"{path}: unreadable image header ({e})") from e


def check_image_complete(path: str | os.PathLike) -> None:
    """Raise ``ImageReadError`` when a PNG or JPEG file is truncated, without decoding pixels.

    Reads only the first and the last bytes of the file: a complete PNG ends with its ``IEND``
    chunk, a complete JPEG with the ``EOI`` marker. A file cut short (an interrupted download or
    copy) lacks them. This catches truncation, not corruption inside the compressed data, which
    only decoding (``read_radiograph``) finds. Other formats pass unchecked.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TRAILER_SEARCH_BYTES))
            tail = f.read()
    except FileNotFoundError as e:
        raise ImageReadError(f"{path}: image file not found") from e
    except OSError as e:
        raise ImageReadError(f"{path}: unreadable image file ({e})") from e
    if head.startswith(_PNG_SIGNATURE):
        if _PNG_TRAILER not in tail:
            raise ImageReadError(f"{path}: truncated PNG (no IEND chunk at the end, {size} bytes)")
    elif head.startswith(_JPEG_SIGNATURE):
        if _JPEG_TRAILER not in tail:
            raise ImageReadError(f"{path}: truncated JPEG (no end-of-image marker, {size} bytes)")


def window_to_uint8(img: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Map a 12/16-bit (or float) image to uint8 by a percentile window; uint8 passes through."""
    if img.dtype == np.uint8:
        return img
    img = img.astype(np.float32)
    lo, hi = np.percentile(img, [low_pct, high_pct])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((img - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def is_dicom(path: str | os.PathLike) -> bool:
    """True for a ``.dcm``/``.dicom`` name or a file with the DICOM magic after its preamble."""
    if os.fspath(path).lower().endswith(DICOM_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            f.seek(_DICOM_MAGIC_OFFSET)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _read_dicom_gray(path: str) -> np.ndarray:
    """A DICOM radiograph's first frame in display order (float32: rescale slope and intercept
    applied, MONOCHROME1 inverted so bone is bright), or ``ImageReadError``."""
    try:
        import pydicom
    except ImportError as e:
        raise ImageReadError(
            f"{path}: reading DICOM needs pydicom, which is not installed "
            "(pip install pydicom, or pip install -e '.[dicom]')"
        ) from e
    try:
        ds = pydicom.dcmread(path)
        img = np.asarray(ds.pixel_array, dtype=np.float32)
    except Exception as e:  # pydicom raises many types for bad or unsupported files
        raise ImageReadError(f"{path}: unreadable DICOM ({type(e).__name__}: {e})") from e
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        img = img[0]
    if img.ndim == 3:  # RGB DICOM (e.g. a secondary capture)
        img = img[..., :3].mean(axis=-1)
    img = img * float(getattr(ds, "RescaleSlope", 1) or 1) + float(
        getattr(ds, "RescaleIntercept", 0) or 0
    )
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        img = img.max() - img
    return img


def read_radiograph(path: str | os.PathLike) -> np.ndarray:
    """Read a radiograph as an HxW uint8 array (grayscale).

    8-bit files are returned as stored; 16-bit files are read unchanged and windowed (Detectron2's
    ``read_image`` would saturate them); colour files are converted to gray. DICOM files (by
    suffix or magic) are read with pydicom when it is installed and windowed the same way. Raises
    ``ImageReadError`` naming the file when it is missing, unreadable or truncated: a truncated
    PNG/JPEG is rejected before decoding (``check_image_complete``), because some OpenCV builds
    return the decoded part of a truncated file as if it were whole.
    """
    return window_to_uint8(read_gray_unchanged(path, "image"))


def read_gray_unchanged(path: str | os.PathLike, what: str = "image") -> np.ndarray:
    """An HxW gray array at the file's own bit depth (colour -> gray, alpha dropped; DICOM as
    float32 in display order).

    Raises ``ImageReadError`` naming the file (and ``what`` it is) when it is missing,
    unreadable or truncated (checked before decoding, see ``check_image_complete``).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageReadError(f"{path}: {what} file not found")
    if is_dicom(path):
        return _read_dicom_gray(path)
    check_image_complete(path)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{path}: unreadable or truncated {what}")
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    return img
