"""Exported bone-age models: TorchScript (traced) and ONNX graphs with a runtime beside them.

See docs/export.md for which model exports to which format and why.
"""

from .graph import EXPORT_FORMATS, ExportError, export_model, exportable_outputs
from .runtime import ExportedBoneAgeModel, parity_with_predictor

__all__ = [
    "EXPORT_FORMATS",
    "ExportError",
    "ExportedBoneAgeModel",
    "export_model",
    "exportable_outputs",
    "parity_with_predictor",
]
