"""boneage-d2: Detectron2 components for pediatric hand bone-age assessment.

``import boneage_d2`` registers every architecture and head in Detectron2's registries and the
built-in dataset names (``phantom_boneage_*``, ``rsna_boneage_*``) in its catalog.
"""

import warnings

with warnings.catch_warnings():  # Detectron2's import calls the deprecated torch.jit.script
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from . import modeling  # noqa: F401  (registration)
from .config import add_boneage_config
from .data.catalog import register_all_boneage

__version__ = "0.1.0"
__all__ = ["add_boneage_config", "register_all_boneage", "__version__"]

register_all_boneage()
