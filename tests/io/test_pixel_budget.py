"""The pixel budget: header sizes of PNG, JPEG, TIFF and DICOM, and a sub-megabyte 30000x30000
PNG refused by every reader (files, uploads, the mapper, the predictor) before it is decoded."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from detectron2.data import transforms as T

from boneage_d2.data.mapper import BoneAgeDatasetMapper
from boneage_d2.engine import load_config
from boneage_d2.engine.predictor import RadiographFiles
from boneage_d2.io import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    ImageSize,
    ImageTooLarge,
    header_size,
    read_image_size,
    read_radiograph,
)
from boneage_d2.io.radiograph import read_radiograph_bytes
from tests.fixtures import CONFIGS
from tests.image_bombs import peak_rss_mb, png_bomb, reset_peak_rss

# A refused bomb may cost what reading its header and a few buffers cost, not its 900 MB.
PEAK_RSS_BOUND_MB = 64


def _encoded(ext: str, img: np.ndarray, *params) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    "ext, params, dtype",
    [
        (".png", (), np.uint8),
        (".png", (), np.uint16),
        (".jpg", (), np.uint8),
        (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), np.uint8),  # SOF2
        (".tif", (), np.uint8),
        (".tif", (), np.uint16),
    ],
)
def test_header_size_reads_the_declared_dimensions(ext, params, dtype):
    img = np.arange(37 * 53, dtype=dtype).reshape(37, 53)
    data = _encoded(ext, img, *params)
    assert header_size(io.BytesIO(data)) == ImageSize(53, 37)
    assert header_size(io.BytesIO(b"GIF89a" + bytes(40))) is None


def test_jpeg_header_is_found_after_app_segments():
    data = _encoded(".jpg", np.zeros((20, 30), np.uint8))
    app = b"\xff\xe1" + struct.pack(">H", 2 + 5000) + bytes(5000)  # a large EXIF-like APP1
    assert header_size(io.BytesIO(data[:2] + app + data[2:])) == ImageSize(30, 20)
    assert header_size(io.BytesIO(data[:2] + b"\xff\xda")) is None  # scan before any frame


def _patched_jpeg(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 declares ``width`` x ``height``."""
    data = bytearray(_encoded(".jpg", np.full((16, 16), 128, np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_png_bomb_is_refused_by_path_and_bytes_without_decoding(tmp_path):
    bomb = png_bomb()
    assert len(bomb) < 2**20  # sub-megabyte
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    assert read_image_size(path) == (30000, 30000)
    if not reset_peak_rss():
        pytest.skip("cannot reset the peak RSS here")
    base = peak_rss_mb()
    with pytest.raises(ImageTooLarge, match=r"bomb\.png: 30000x30000 pixels \(900 MP\)") as e:
        read_radiograph(path)
    assert "pixel limit of 40 MP" in str(e.value) and e.value.size.pixels == 900_000_000
    with pytest.raises(ImageTooLarge, match="upload.png: 30000x30000"):
        read_radiograph_bytes(bomb, "upload.png")
    assert peak_rss_mb() - base <= PEAK_RSS_BOUND_MB


def test_every_format_is_checked_and_the_limit_is_a_parameter(tmp_path):
    with pytest.raises(ImageTooLarge, match=r"60000x50000 pixels \(3000 MP\)"):
        read_radiograph_bytes(_patched_jpeg(60000, 50000), "big.jpg")
    film = np.full((200, 160), 90, np.uint8)
    for ext in (".png", ".jpg", ".tif"):
        path = tmp_path / f"film{ext}"
        cv2.imwrite(str(path), film)
        assert read_radiograph(path).shape == (200, 160)
        with pytest.raises(ImageTooLarge, match=r"160x200 pixels .* limit of 0\.03 MP"):
            read_radiograph(path, max_pixels=30_000)
    with pytest.raises(ImageReadError, match="unreadable image header"):
        read_radiograph_bytes(b"not an image at all" * 10, "notes.txt")


def test_dicom_rows_columns_and_frames_are_checked(tmp_path):
    pytest.importorskip("pydicom")
    from tests.io.test_intensity import write_dicom

    path = tmp_path / "film.dcm"
    write_dicom(path, np.full((64, 48), 1000, np.uint16), 12)
    assert read_radiograph(path, max_pixels=64 * 48).shape == (64, 48)
    with pytest.raises(ImageTooLarge, match=r"film\.dcm: 48x64 pixels"):
        read_radiograph(path, max_pixels=64 * 48 - 1)
    frames = np.full((3, 64, 48), 1000, np.uint16)
    multi = tmp_path / "multi.dcm"
    write_dicom(multi, frames.reshape(3 * 64, 48), 12)
    import pydicom

    ds = pydicom.dcmread(multi)
    ds.Rows, ds.NumberOfFrames = 64, 3
    ds.save_as(multi)
    with pytest.raises(ImageTooLarge, match=r"48x64 pixels x 3 frames \(0\.009216 MP\)"):
        read_radiograph(multi, max_pixels=2 * 64 * 48)
    assert read_radiograph(multi, max_pixels=3 * 64 * 48).shape == (64, 48)


def test_config_limit_reaches_the_mapper_and_the_predictor_files(tmp_path):
    path = tmp_path / "film.png"
    cv2.imwrite(str(path), np.full((200, 160), 90, np.uint8))
    cfg = load_config(str(CONFIGS / "Global/R18-phantom-demo.yaml"), [])
    assert cfg.BONEAGE.INPUT.MAX_PIXELS == DEFAULT_MAX_PIXELS
    cfg = load_config(
        str(CONFIGS / "Global/R18-phantom-demo.yaml"), ["BONEAGE.INPUT.MAX_PIXELS", "30000"]
    )
    record = {"file_name": str(path), "image_id": 1, "height": 200, "width": 160}
    with pytest.raises(ImageTooLarge, match="limit of 0.03 MP"):
        BoneAgeDatasetMapper(cfg, is_train=False)(record)
    assert BoneAgeDatasetMapper(cfg, is_train=True)({**record, "annotations": []}) is None
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    items = RadiographFiles([str(bomb)], [True], T.AugmentationList([]))
    item = items[0]
    assert "image" not in item and "30000x30000 pixels" in item["error"]
    assert "limit of 40 MP" in item["error"]
