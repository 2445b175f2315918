"""The synthetic phantom: radiograph-like hands whose bones carry the age, in the RSNA layout.

Torch-free: ``tools/make_phantom.py`` and these functions run without PyTorch or Detectron2.

Modules: :mod:`.config` (every knob), :mod:`.anatomy` (the hand and its maturity cues),
:mod:`.subject` (sex, age, label), :mod:`.raster` and :mod:`.placement` (hands to pixels),
:mod:`.distractors`, :mod:`.render` (one image), :mod:`.layout` (files on disk) and
:mod:`.dataset` (a whole dataset).
"""

from .anatomy import maturity_months
from .config import DEFAULT_DISTRACTOR_PROBS, DISTRACTOR_KINDS, PhantomConfig
from .dataset import generate_phantom_dataset
from .layout import SPLIT_FILES, split_ids
from .render import PhantomSample, render_phantom, sample_phantom
from .subject import draw_label, draw_subject

__all__ = [
    "DEFAULT_DISTRACTOR_PROBS",
    "DISTRACTOR_KINDS",
    "SPLIT_FILES",
    "PhantomConfig",
    "PhantomSample",
    "draw_label",
    "draw_subject",
    "generate_phantom_dataset",
    "maturity_months",
    "render_phantom",
    "sample_phantom",
    "split_ids",
]
