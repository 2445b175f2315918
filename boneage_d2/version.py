"""The package version (one place; ``setup.py`` and the converted jsons read it from here)."""

__version__ = "0.1.0"
