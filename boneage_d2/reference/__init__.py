"""Reference data for reading a bone age against the chronological age (torch-free, layer 0)."""

from .sds import DEFAULT_SD_TABLE, SDSResult, SDTable, bone_age_sds

__all__ = ["DEFAULT_SD_TABLE", "SDSResult", "SDTable", "bone_age_sds"]
