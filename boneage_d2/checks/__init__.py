"""Model-independent checks on a radiograph before a model reads it (torch-free, layer 1)."""

from .image_checks import HandEvidence, ImageChecks, hand_evidence

__all__ = ["HandEvidence", "ImageChecks", "hand_evidence"]
