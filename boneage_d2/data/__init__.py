"""Data: readers, converter, phantom generator, registration, mapper."""

from .catalog import (
    load_boneage_json,
    prepare_task_view,
    register_all_boneage,
    register_boneage_root,
    register_boneage_split,
)
from .mapper import BoneAgeDatasetMapper
from .transforms import LongSideResize, build_boneage_augmentation

__all__ = [
    "BoneAgeDatasetMapper",
    "LongSideResize",
    "build_boneage_augmentation",
    "load_boneage_json",
    "prepare_task_view",
    "register_all_boneage",
    "register_boneage_root",
    "register_boneage_split",
]
