"""``python -m boneage_d2.serve``: the same as ``boneage-serve``."""

from .cli import cli

cli()
