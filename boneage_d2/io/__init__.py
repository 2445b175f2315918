"""Torch-free file and image input/output: atomic writes, radiograph readers and the intensity
pipeline that maps stored values to the model's uint8 input."""

from .atomic import atomic_open, atomic_write_json, sha1_file
from .intensity import (
    PIPELINES,
    IntensityPipeline,
    RawRadiograph,
    display_grey,
    stretch_percentiles,
)
from .radiograph import (
    DICOM_SUFFIXES,
    ImageReadError,
    check_image_complete,
    is_dicom,
    read_gray_unchanged,
    read_image_size,
    read_radiograph,
    read_raw_radiograph,
)

__all__ = [
    "DICOM_SUFFIXES",
    "PIPELINES",
    "ImageReadError",
    "IntensityPipeline",
    "RawRadiograph",
    "atomic_open",
    "atomic_write_json",
    "check_image_complete",
    "display_grey",
    "is_dicom",
    "read_gray_unchanged",
    "read_image_size",
    "read_radiograph",
    "read_raw_radiograph",
    "sha1_file",
    "stretch_percentiles",
]
