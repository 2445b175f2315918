"""Load the command-line tools of ``tools/`` (scripts, not package modules) for in-process tests."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.fixtures import REPO

TOOLS = REPO / "tools"


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module, imported once per process: ``load_tool("predict")``."""
    key = f"boneage_tools.{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
