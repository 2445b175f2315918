"""The package's import layers: offline code without torch, one-way imports between layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import REPO

PACKAGE = REPO / "boneage_d2"
RUNTIME = {"torch", "torchvision", "detectron2", "fvcore"}
# Lower layers never import higher ones; a layer may import itself and everything below it.
LAYERS = {
    "version": 0,
    "schema": 0,
    "reference": 0,
    "io": 0,
    "utils": 0,
    "convert": 1,
    "checks": 1,
    "phantom": 1,
    "config": 2,
    "model_zoo": 2,
    "data": 2,
    "modeling": 2,
    "evaluation": 2,
    "vis": 3,
    "engine": 4,
    "benchmark": 5,
    "serve": 5,
    "export": 5,
    "cli": 6,
}
TORCH_FREE = ("version", "schema", "reference", "io", "convert", "checks", "phantom")
# Same layer, still kept apart: the data pipeline and the models meet only in the engine.
APART = {("data", "modeling"), ("modeling", "data")}


def _imports(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            names.append(prefix)
            names += [f"{prefix}.{a.name}" for a in node.names]
    return names


def _component(module_name: str) -> str | None:
    parts = module_name.split(".")
    return parts[1] if parts[0] == "boneage_d2" and len(parts) > 1 else None


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_package_module_has_a_layer():
    for path in _package_files():
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        assert rel.parts[0].removesuffix(".py") in LAYERS, f"{rel}: add it to LAYERS"


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_follow_the_layers(path):
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1 and rel.name == "__init__.py":
        return  # the package root wires everything together
    own = rel.parts[0].removesuffix(".py")
    for name in _imports(path):
        assert not name.startswith("tools"), f"{rel} imports the CLI {name}"
        other = _component(name)
        if other is None or other == own or other not in LAYERS:
            if own in TORCH_FREE:
                assert name.split(".")[0] not in RUNTIME, f"{rel} (torch-free) imports {name}"
            continue
        assert LAYERS[other] <= LAYERS[own], f"{rel} ({own}) imports {name} ({other}, higher)"
        assert (own, other) not in APART, f"{rel} imports {name}: {own} and {other} stay apart"
        if own in TORCH_FREE:
            assert other in TORCH_FREE, f"{rel} (torch-free) imports {name}"


BLOCKER = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
sys.meta_path.insert(0, Block())
for tool, argv in {runs!r}:
    sys.argv = [tool, *argv]
    try:
        runpy.run_path(tool, run_name="__main__")
    except SystemExit as e:
        assert not e.code, (tool, e.code)
import boneage_d2
assert boneage_d2.__all__ == ["__version__"], boneage_d2.__all__
print("loaded", sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r}))
"""


def test_phantom_and_converter_run_without_torch(tmp_path):
    """With torch, torchvision, Detectron2 and fvcore unimportable, the phantom generator and the
    converter (hand masks derived) still write their outputs through their CLIs."""
    raw, coco = tmp_path / "raw", tmp_path / "coco"
    runs = [
        (
            str(REPO / "tools/make_phantom.py"),
            [
                "--output-dir",
                str(raw),
                "--num-train",
                "3",
                "--num-val",
                "2",
                "--num-test",
                "1",
                "--seed",
                "0",
            ],
        ),
        (
            str(REPO / "tools/convert_rsna.py"),
            ["--rsna-root", str(raw), "--output-dir", str(coco), "--derive-masks"],
        ),
    ]
    code = BLOCKER.format(blocked=sorted(RUNTIME), runs=runs)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "loaded []" in out.stdout
    assert sorted(p.name for p in coco.glob("*.json")) == ["test.json", "train.json", "val.json"]
