"""Reading radiographs: header-only sizes, 8/16-bit PNG/JPEG and DICOM at their stored values,
mapped to uint8 by the intensity pipeline (``intensity.py``), corrupt-file errors.

Every reader checks the pixel budget first (``check_pixel_budget``): the dimensions the header
declares (``image_header.py``; DICOM Rows x Columns x frames) against ``max_pixels``, so a
decompression bomb is refused before a decoder allocates anything."""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image

from .image_header import DEFAULT_MAX_PIXELS, ImageSize, header_size
from .intensity import IntensityPipeline, RawRadiograph

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DICOM_SUFFIXES",
    "ImageReadError",
    "ImageTooLarge",
    "check_pixel_budget",
    "is_dicom",
    "check_image_complete",
    "read_image_size",
    "read_gray_unchanged",
    "read_radiograph",
    "read_radiograph_bytes",
    "read_raw_radiograph",
    "read_raw_radiograph_bytes",
    "sniff_image_format",
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


class ImageTooLarge(ImageReadError):
    """An image whose header declares more pixels than the budget (``size``, ``limit``)."""

    def __init__(self, message: str, size: ImageSize, limit: int):
        super().__init__(message)
        self.size, self.limit = size, limit


def check_pixel_budget(size: ImageSize, max_pixels: int, name: str) -> None:
    """``ImageTooLarge`` naming ``name``, its dimensions and the limit when ``size`` is over
    ``max_pixels``: the one pixel-budget test every reader applies before decoding."""
    if size.pixels > max_pixels:
        raise ImageTooLarge(
            f"{name}: {size} ({size.pixels / 1e6:.4g} MP) is over the pixel limit of "
            f"{max_pixels / 1e6:g} MP; refused before decoding",
            size,
            max_pixels,
        )


def _header_dimensions(f: BinaryIO, name: str) -> ImageSize:
    """The size a file object's header declares: PNG/JPEG/TIFF parsed here, other formats by
    PIL's header reader (lazy: no pixels decoded); ``ImageReadError`` when neither can say."""
    size = header_size(f)
    if size is not None:
        return size
    try:
        f.seek(0)
        with Image.open(f) as im:
            width, height = im.size
    except Exception as e:  # PIL raises several types for bad headers
        raise ImageReadError(f"{name}: unreadable image header ({e})") from e
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{name}: unreadable image header (size {width}x{height})")
    return ImageSize(width, height)


def _file_dimensions(path: str | os.PathLike) -> ImageSize:
    try:
        with open(path, "rb") as f:
            return _header_dimensions(f, os.fspath(path))
    except FileNotFoundError as e:
        raise ImageReadError(f"{path}: image file not found") from e
    except ImageReadError:
        raise
    except OSError as e:
        raise ImageReadError(f"{path}: unreadable image file ({e})") from e


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file header, without decoding pixels.

    PNGs are answered from their IHDR chunk (checked against its CRC), JPEGs from their SOF
    segment, TIFFs from their first IFD; anything else, or a header that does not check out,
    goes through PIL, which raises for a bad header.
    """
    size = _file_dimensions(path)
    return size.width, size.height


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
    _check_trailer(head, tail, size, os.fspath(path))


def _check_trailer(head: bytes, tail: bytes, size: int, name: str) -> None:
    """``check_image_complete``'s test on a file's first bytes and its last ones."""
    if head.startswith(_PNG_SIGNATURE):
        if _PNG_TRAILER not in tail:
            raise ImageReadError(f"{name}: truncated PNG (no IEND chunk at the end, {size} bytes)")
    elif head.startswith(_JPEG_SIGNATURE):
        if _JPEG_TRAILER not in tail:
            raise ImageReadError(f"{name}: truncated JPEG (no end-of-image marker, {size} bytes)")


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


def _read_dicom_raw(path: str, source=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> RawRadiograph:
    """A DICOM radiograph's first frame at its stored values, with its dataset (for the modality
    and VOI LUTs) and its photometric interpretation, or ``ImageReadError``. ``source``: a
    file object to read instead of the file ``path`` (then only the name in messages). Rows x
    Columns x frames are checked against ``max_pixels`` before the pixel data is decoded."""
    try:
        import pydicom
    except ImportError as e:
        raise ImageReadError(
            f"{path}: reading DICOM needs pydicom, which is not installed "
            "(pip install pydicom, or pip install -e '.[dicom]')"
        ) from e
    try:
        ds = pydicom.dcmread(path if source is None else source)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        size = ImageSize(int(ds.Columns), int(ds.Rows), frames)
    except Exception as e:  # pydicom raises many types for bad or unsupported files
        raise ImageReadError(f"{path}: unreadable DICOM ({type(e).__name__}: {e})") from e
    check_pixel_budget(size, max_pixels, path)
    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as e:
        raise ImageReadError(f"{path}: unreadable DICOM ({type(e).__name__}: {e})") from e
    if frames > 1:
        pixels = pixels[0]
    bits = int(getattr(ds, "BitsStored", 0) or 8 * pixels.itemsize)
    if pixels.ndim == 3:  # RGB DICOM (e.g. a secondary capture): gray over BitsStored, no LUTs
        return RawRadiograph(pixels[..., :3].mean(axis=-1, dtype=np.float32), bits)
    photometric = str(getattr(ds, "PhotometricInterpretation", "")).upper()
    return RawRadiograph(pixels, bits, monochrome1=photometric == "MONOCHROME1", dicom=ds)


def _png_bits(img: np.ndarray) -> int:
    """The depth a PNG/JPEG's values span: 8 for uint8; uint16 from the data's maximum, at least 8
    and at most 16 (an 8-bit film saved x257 reads 16, a 12-bit film in a 16-bit PNG 12)."""
    if img.dtype == np.uint8:
        return 8
    return min(max(int(img.max(initial=0)).bit_length(), 8), 16)


def read_raw_radiograph(
    path: str | os.PathLike, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> RawRadiograph:
    """A radiograph's stored values (``RawRadiograph``): PNG/JPEG at their own depth (colour ->
    gray, alpha dropped), DICOM (by suffix or magic, with pydicom) before any LUT.

    Raises ``ImageReadError`` naming the file (and ``what`` it is) when it is missing,
    unreadable, truncated (checked before decoding, see ``check_image_complete``) or not 8/16-bit,
    and ``ImageTooLarge`` when its header declares more than ``max_pixels`` pixels.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageReadError(f"{path}: {what} file not found")
    if is_dicom(path):
        return _read_dicom_raw(path, max_pixels=max_pixels)
    check_image_complete(path)
    check_pixel_budget(_file_dimensions(path), max_pixels, path)
    return _decoded_raw(cv2.imread(path, cv2.IMREAD_UNCHANGED), path, what)


def _decoded_raw(img: np.ndarray | None, name: str, what: str) -> RawRadiograph:
    """OpenCV's decoded PNG/JPEG (None when it failed) -> its gray ``RawRadiograph``."""
    if img is None:
        raise ImageReadError(f"{name}: unreadable or truncated {what}")
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{name}: {img.dtype} pixels; expected an 8- or 16-bit {what}")
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    return RawRadiograph(img, _png_bits(img))


def sniff_image_format(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"`` or ``"dicom"`` from a file's first bytes (signature, or the DICOM
    magic after the preamble), else None."""
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(_JPEG_SIGNATURE):
        return "jpeg"
    if data[_DICOM_MAGIC_OFFSET : _DICOM_MAGIC_OFFSET + 4] == b"DICM":
        return "dicom"
    return None


def read_raw_radiograph_bytes(
    data: bytes, name: str, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> RawRadiograph:
    """``read_raw_radiograph`` for a file's bytes (an upload); ``name`` (its file name) appears in
    errors and, by its suffix, marks DICOM as a path does. Same checks, same decoders."""
    if not data:
        raise ImageReadError(f"{name}: empty {what} file (0 bytes)")
    if name.lower().endswith(DICOM_SUFFIXES) or sniff_image_format(data) == "dicom":
        return _read_dicom_raw(name, io.BytesIO(data), max_pixels)
    _check_trailer(data[:8], data[-_TRAILER_SEARCH_BYTES:], len(data), name)
    check_pixel_budget(_header_dimensions(io.BytesIO(data), name), max_pixels, name)
    buf = np.frombuffer(data, dtype=np.uint8)
    return _decoded_raw(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), name, what)


def read_gray_unchanged(
    path: str | os.PathLike, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """An HxW gray array at the file's own bit depth (``read_raw_radiograph``'s pixels)."""
    return read_raw_radiograph(path, what, max_pixels).pixels


def read_radiograph(
    path: str | os.PathLike,
    intensity: IntensityPipeline | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a radiograph as the HxW uint8 array the model sees, through ``intensity`` (None =
    the default ``IntensityPipeline()``: 8-bit as stored, 16-bit and DICOM over their bit depth
    or VOI window; docs/inputs.md).

    Raises ``ImageReadError`` naming the file when it is missing, unreadable or truncated: a
    truncated PNG/JPEG is rejected before decoding (``check_image_complete``), because some
    OpenCV builds return the decoded part of a truncated file as if it were whole. An image
    whose header declares more than ``max_pixels`` pixels raises ``ImageTooLarge`` (a subclass).
    """
    return _gray_levels(read_raw_radiograph(path, "image", max_pixels), os.fspath(path), intensity)


def read_radiograph_bytes(
    data: bytes,
    name: str,
    intensity: IntensityPipeline | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """``read_radiograph`` for a file's bytes (an upload named ``name``): the same decoders, checks,
    pixel budget and intensity pipeline, so an upload reaches the model exactly as the file
    would."""
    raw = read_raw_radiograph_bytes(data, name, "image", max_pixels)
    return _gray_levels(raw, name, intensity)


def _gray_levels(raw: RawRadiograph, name: str, intensity: IntensityPipeline | None) -> np.ndarray:
    try:
        return (intensity or IntensityPipeline())(raw)
    except Exception as e:  # pydicom's LUT functions raise many types for bad modules
        raise ImageReadError(
            f"{name}: cannot map its values to grey levels ({type(e).__name__}: {e})"
        ) from e
