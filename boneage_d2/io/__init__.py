"""Torch-free file and image input/output: atomic writes and radiograph readers."""

from .atomic import atomic_open, atomic_write_json, sha1_file
from .radiograph import (
    DICOM_SUFFIXES,
    ImageReadError,
    check_image_complete,
    is_dicom,
    read_image_size,
    read_radiograph,
    window_to_uint8,
)

__all__ = [
    "DICOM_SUFFIXES",
    "ImageReadError",
    "atomic_open",
    "atomic_write_json",
    "check_image_complete",
    "is_dicom",
    "read_image_size",
    "read_radiograph",
    "sha1_file",
    "window_to_uint8",
]
