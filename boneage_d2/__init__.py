"""boneage-d2: Detectron2 components for pediatric hand bone-age assessment.

``import boneage_d2`` registers every architecture and head in Detectron2's registries and the
built-in dataset names (``phantom_boneage_*``, ``rsna_boneage_*``) in its catalog.

The offline layers (``boneage_d2.convert``, ``boneage_d2.phantom``, ``boneage_d2.io``,
``boneage_d2.schema``) need neither PyTorch nor Detectron2: on a machine without them this
package imports with only ``__version__``, so the converter and the phantom generator still run.
"""

from .version import __version__

_RUNTIME = ("torch", "torchvision", "detectron2", "fvcore")

try:
    import detectron2  # noqa: F401
except ModuleNotFoundError as e:  # a torch-free install: offline tools only
    if (e.name or "").split(".")[0] not in _RUNTIME:
        raise
    __all__ = ["__version__"]
else:
    import warnings

    with warnings.catch_warnings():  # Detectron2's import calls the deprecated torch.jit.script
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        from . import modeling  # noqa: F401  (registration)
    from .config import add_boneage_config
    from .data.catalog import register_all_boneage

    __all__ = ["__version__", "add_boneage_config", "register_all_boneage"]
    register_all_boneage()
