"""Torch-free file and image input/output: atomic writes, radiograph readers and the intensity
pipeline that maps stored values to the model's uint8 input."""

from .atomic import atomic_open, atomic_write_json, sha1_file
from .image_header import DEFAULT_MAX_PIXELS, ImageSize, header_size
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
    ImageTooLarge,
    check_image_complete,
    check_pixel_budget,
    is_dicom,
    read_gray_unchanged,
    read_image_size,
    read_radiograph,
    read_raw_radiograph,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DICOM_SUFFIXES",
    "PIPELINES",
    "ImageReadError",
    "ImageSize",
    "ImageTooLarge",
    "IntensityPipeline",
    "RawRadiograph",
    "atomic_open",
    "atomic_write_json",
    "check_image_complete",
    "check_pixel_budget",
    "display_grey",
    "header_size",
    "is_dicom",
    "read_gray_unchanged",
    "read_image_size",
    "read_radiograph",
    "read_raw_radiograph",
    "sha1_file",
    "stretch_percentiles",
]
