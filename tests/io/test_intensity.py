"""The intensity pipeline: every format of one film gives one model input and one age; DICOM
windows and VOI LUTs as pydicom's ``apply_voi_lut`` shows them; the configured pipeline reaches
the mapper and the predictor."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from boneage_d2.io import ImageReadError, IntensityPipeline, read_radiograph, read_raw_radiograph
from tests.fixtures import CONFIGS, RSNA_SAMPLE, write_tiny_dataset

pydicom = pytest.importorskip("pydicom")
from pydicom.pixels import apply_voi_lut  # noqa: E402

DEMO = CONFIGS / "ALA-Net/R18-phantom-demo.yaml"
FILMS = ("1377.png", "1604.png", "1899.png")
DICOM_DEPTHS = (8, 12, 16)
# JPEG at quality 100 is still lossy (chroma-free, but quantised DCT): mean error in grey levels.
JPEG_MEAN_TOLERANCE = 1.0


def write_dicom(path: Path, stored: np.ndarray, bits: int, photometric="MONOCHROME2", **extra):
    """An uncompressed single-frame DICOM (ExplicitVRLittleEndian) of ``stored`` values."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    alloc = 8 if bits == 8 else 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = alloc, bits, bits - 1, 0
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = stored.astype(np.uint8 if alloc == 8 else np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


def write_encodings(gray: np.ndarray, folder: Path) -> dict[str, Path]:
    """The same 8-bit pixels as PNG 8/16-bit, JPEG and DICOM MONOCHROME2/1 at 8, 12, 16 bits."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"png8": folder / "png8.png", "png16": folder / "png16.png", "jpeg": folder / "q.jpg"}
    cv2.imwrite(str(files["png8"]), gray)
    cv2.imwrite(str(files["png16"]), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(files["jpeg"]), gray, [cv2.IMWRITE_JPEG_QUALITY, 100])
    for bits in DICOM_DEPTHS:
        top = 2**bits - 1
        stored = np.rint(gray * (top / 255.0)).astype(np.int64)
        for photometric, values in (("MONOCHROME2", stored), ("MONOCHROME1", top - stored)):
            name = f"dcm_{photometric[-1]}_{bits}"
            files[name] = folder / f"{name}.dcm"
            write_dicom(files[name], values, bits, photometric)
    return files


def smooth_image(seed: int = 0, shape=(96, 72)) -> np.ndarray:
    """A film-like test image: a gradient, a bright blob, noise, the full 0..255 range."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 40 + 120 * xx / shape[1] + 90 * np.exp(-((yy - 40) ** 2 + (xx - 30) ** 2) / 300)
    img = img + rng.normal(0, 6, shape)
    img[0, 0], img[-1, -1] = 0, 255
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def assert_same_inputs(files: dict[str, Path], intensity=None) -> dict[str, np.ndarray]:
    """Every encoding reads to the 8-bit PNG's input (JPEG: on average); returns the inputs."""
    inputs = {k: read_radiograph(p, intensity) for k, p in files.items()}
    ref = inputs["png8"].astype(int)
    for name, img in inputs.items():
        diff = np.abs(img.astype(int) - ref)
        if name == "jpeg":
            assert diff.mean() <= JPEG_MEAN_TOLERANCE, (name, diff.mean())
        else:
            assert diff.max() <= 1, (name, diff.max())
    return inputs


def test_every_format_gives_the_8bit_pixels(tmp_path):
    gray = smooth_image()
    inputs = assert_same_inputs(write_encodings(gray, tmp_path))
    assert np.array_equal(inputs["png8"], gray)  # the default leaves 8-bit input as stored
    assert np.array_equal(inputs["png16"], gray)  # x257 maps back exactly


def test_16bit_png_depth_comes_from_its_data(tmp_path):
    twelve = np.rint(smooth_image() * (4095 / 255)).astype(np.uint16)  # a 12-bit film
    cv2.imwrite(str(tmp_path / "a.png"), twelve)
    assert read_raw_radiograph(tmp_path / "a.png").bits == 12
    expected = np.rint(twelve * (255 / 4095)).astype(int)
    assert np.abs(read_radiograph(tmp_path / "a.png").astype(int) - expected).max() <= 1
    cv2.imwrite(str(tmp_path / "b.png"), smooth_image().astype(np.uint16))  # 0..255 in 16 bits
    assert np.array_equal(read_radiograph(tmp_path / "b.png"), smooth_image())


def _twelve_bit(seed=1, shape=(64, 48)) -> np.ndarray:
    return np.rint(smooth_image(seed, shape) * (4095 / 255)).astype(np.uint16)


def _viewer(values: np.ndarray, top: float = 4095.0, monochrome1=False) -> np.ndarray:
    """What a viewer shows of ``apply_voi_lut``'s output, scaled to 0..255 over 0..top."""
    grey = np.clip(values * (255.0 / top), 0, 255)
    return np.rint(255 - grey if monochrome1 else grey).astype(int)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_window_is_applied_as_apply_voi_lut_does(tmp_path, photometric):
    stored = _twelve_bit()
    path = tmp_path / "w.dcm"
    ds = write_dicom(
        path, stored, 12, photometric, WindowCenter=[2400, 1500], WindowWidth=[1600, 800]
    )
    mono1 = photometric == "MONOCHROME1"
    for index in (0, 1):
        expected = _viewer(apply_voi_lut(stored, ds, index=index), monochrome1=mono1)
        got = read_radiograph(path, IntensityPipeline(dicom_window_index=index)).astype(int)
        assert np.abs(got - expected).max() <= 1, index
    first = read_radiograph(path).astype(int)
    assert np.abs(first - _viewer(stored.astype(float), monochrome1=mono1)).mean() > 20
    with pytest.raises(ImageReadError, match=r"w\.dcm: .*DICOM_WINDOW_INDEX 2 but the file has 2"):
        read_radiograph(path, IntensityPipeline(dicom_window_index=2))


def test_dicom_rescale_is_applied_before_the_window(tmp_path):
    stored = _twelve_bit()
    path = tmp_path / "r.dcm"
    extra = {"RescaleSlope": 1, "RescaleIntercept": -1024, "WindowCenter": 800, "WindowWidth": 1200}
    ds = write_dicom(path, stored, 12, **extra)
    windowed = apply_voi_lut(stored.astype(float) - 1024, ds)  # output range -1024..3071
    expected = np.rint(np.clip((windowed + 1024) * (255 / 4095), 0, 255)).astype(int)
    assert np.abs(read_radiograph(path).astype(int) - expected).max() <= 1


def test_dicom_voi_lut_sequence_is_applied_as_apply_voi_lut_does(tmp_path):
    from pydicom.dataset import Dataset

    stored = _twelve_bit(seed=2)
    items = []
    for gamma in (0.5, 2.0):
        item = Dataset()
        item.LUTDescriptor = [4096, 0, 12]
        lut = np.rint(4095 * (np.arange(4096) / 4095) ** gamma).astype("<u2")
        item.add_new("LUTData", "OW", lut.tobytes())  # OW, as most files store it
        items.append(item)
    path = tmp_path / "lut.dcm"
    ds = write_dicom(path, stored, 12, VOILUTSequence=items)
    ds = pydicom.dcmread(path)
    for index in (0, 1):
        expected = _viewer(apply_voi_lut(ds.pixel_array, ds, index=index).astype(float))
        got = read_radiograph(path, IntensityPipeline(dicom_window_index=index)).astype(int)
        assert np.abs(got - expected).max() <= 1, index


def test_percentiles_stretch_every_format(tmp_path):
    gray = np.clip(smooth_image() // 2 + 60, 0, 255).astype(np.uint8)  # low contrast: 60..187
    stretch = IntensityPipeline("percentiles", low_pct=1.0, high_pct=99.0)
    inputs = assert_same_inputs(write_encodings(gray, tmp_path), stretch)
    lo, hi = np.percentile(gray, [1.0, 99.0])
    expected = np.rint(np.clip((gray - lo) * 255 / (hi - lo), 0, 255)).astype(int)
    assert np.abs(inputs["png8"].astype(int) - expected).max() <= 1  # 8-bit is stretched too
    assert np.array_equal(inputs["png8"], inputs["png16"])


def test_pipeline_checks_its_parameters():
    with pytest.raises(ValueError, match="'minmax'"):
        IntensityPipeline("minmax")
    with pytest.raises(ValueError, match="LOW_PCT < HIGH_PCT"):
        IntensityPipeline("percentiles", low_pct=60, high_pct=40)


# -- the configured pipeline in the mapper and the predictor ------------------------------------


def _cfg(opts=()):
    from boneage_d2.engine import load_config

    return load_config(str(DEMO), ["BONEAGE.INPUT.LONG_SIDE_TEST", "128", *opts])


@pytest.fixture(scope="module")
def predictor():
    """The ALA-Net demo model with random weights (same input -> same output is all it shows)."""
    import torch

    from boneage_d2.engine.predictor import BoneAgePredictor

    torch.manual_seed(0)
    return BoneAgePredictor(_cfg(["MODEL.WEIGHTS", ""]))


def assert_one_age(predictor, files: dict[str, Path]) -> float:
    """Every encoding gets the 8-bit PNG's age (JPEG within 0.5 months); returns that age.

    Random weights move the age little (an inverted film: ~0.1 month), so the lossless encodings,
    whose inputs are identical, must agree to 0.001 month."""
    stream = predictor.predict_files(list(files.values()), [True] * len(files), progress=False)
    ages = {k: float(out["boneage"]) for k, (_, out) in zip(files, stream)}
    for name, age in ages.items():
        assert age == pytest.approx(ages["png8"], abs=0.5 if name == "jpeg" else 1e-3), name
    return ages["png8"]


def test_every_format_gives_one_age(predictor, tmp_path):
    gray = smooth_image(shape=(160, 120))
    age = assert_one_age(predictor, write_encodings(gray, tmp_path))
    assert abs(float(predictor(255 - gray, male=True)["boneage"]) - age) > 0.01  # it responds


@pytest.mark.rsna_sample
@pytest.mark.skipif(not RSNA_SAMPLE.is_dir(), reason="no real films in ../shared/rsna_sample")
@pytest.mark.parametrize("film", FILMS)
def test_real_film_in_every_format_gives_one_input_and_one_age(predictor, tmp_path, film):
    gray = cv2.imread(str(RSNA_SAMPLE / film), cv2.IMREAD_GRAYSCALE)
    files = write_encodings(gray, tmp_path)  # written under tmp_path, never into the repo
    assert_same_inputs(files)
    assert_one_age(predictor, files)


def test_predictor_reads_through_its_config(tmp_path):
    import torch

    from boneage_d2.engine.predictor import BoneAgePredictor

    gray = np.clip(smooth_image() // 2 + 60, 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), gray)
    torch.manual_seed(0)
    stretched = BoneAgePredictor(
        _cfg(["MODEL.WEIGHTS", "", "BONEAGE.INPUT.INTENSITY.NAME", "percentiles"])
    )
    assert stretched.intensity == IntensityPipeline("percentiles")
    want = read_radiograph(tmp_path / "a.png", IntensityPipeline("percentiles"))
    assert np.array_equal(stretched.read(tmp_path / "a.png"), want)
    ((inp, _),) = stretched.predict_files([tmp_path / "a.png"], [True], progress=False)
    assert torch.equal(inp["image"], stretched.model_input(want, True)["image"])


@pytest.mark.parametrize("is_train", [True, False])
def test_mapper_reads_16bit_twin_like_8bit(tmp_path, is_train):
    from boneage_d2.data import BoneAgeDatasetMapper
    from boneage_d2.data.catalog import load_boneage_json

    record = load_boneage_json(write_tiny_dataset(tmp_path, num_images=1))[0]
    gray = cv2.imread(record["file_name"], cv2.IMREAD_GRAYSCALE)
    twin = dict(record, file_name=str(tmp_path / "twin16.png"))
    cv2.imwrite(twin["file_name"], gray.astype(np.uint16) * 257)
    tensors = {}
    plain = ("BONEAGE.INPUT.INTENSITY.NAME", "bit_depth")
    stretched = ("BONEAGE.INPUT.INTENSITY.NAME", "percentiles")
    for opts in (plain, stretched):
        mapper = BoneAgeDatasetMapper(_cfg(opts), is_train=is_train)
        assert mapper.intensity == IntensityPipeline.from_config(_cfg(opts))
        for key, rec in (("8", record), ("16", twin)):
            np.random.seed(0)  # noqa: NPY002 (Detectron2 augmentations draw from np.random)
            tensors[opts, key] = mapper(rec)["image"]
        assert np.array_equal(tensors[opts, "8"].numpy(), tensors[opts, "16"].numpy())
    assert not np.array_equal(tensors[plain, "8"].numpy(), tensors[stretched, "8"].numpy())
