"""The synthetic phantom: radiograph-like hands whose bones carry the age, in the RSNA layout.

Torch-free: ``tools/make_phantom.py`` and these functions run without PyTorch or Detectron2.
"""

from .generator import (
    DEFAULT_DISTRACTOR_PROBS,
    DISTRACTOR_KINDS,
    SPLIT_FILES,
    PhantomConfig,
    PhantomSample,
    generate_phantom_dataset,
    maturity_months,
    render_phantom,
    sample_phantom,
    split_ids,
)

__all__ = [
    "DEFAULT_DISTRACTOR_PROBS",
    "DISTRACTOR_KINDS",
    "SPLIT_FILES",
    "PhantomConfig",
    "PhantomSample",
    "generate_phantom_dataset",
    "maturity_months",
    "render_phantom",
    "sample_phantom",
    "split_ids",
]
