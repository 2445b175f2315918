"""Results: the summary table, the exit decision and the json file."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boneage_d2.io.atomic import atomic_write_json

from .timing import fmt_s

__all__ = ["SECTIONS", "any_failed", "finite", "format_table", "table_rows", "write_results"]

SECTIONS = ("inference", "backbones", "training", "loader", "convert")


def _result(row: dict) -> str:
    if "error" in row:
        return "ERROR"
    if "passed" not in row:
        return "-"
    return "PASS" if row["passed"] else "MISS"


def _training_reference(r: dict) -> str:
    if "ratio" not in r:
        return ""
    return f"{r['training_images_per_s']:.1f} img/s training ({r['training_device']})"


def _ratio(r: dict) -> str:
    return f"{r['ratio']:.2f}x" if "ratio" in r else ""


def _resnet_times(r: dict) -> str:
    return f"{fmt_s(r['r18_s'])} R18, {fmt_s(r['r50_s'])} R50"


def _backbone_ratios(r: dict) -> str:
    return f"{r['ratio_r18']:.2f}x R18, {r['ratio_r50']:.2f}x R50" if "ratio_r18" in r else ""


# section -> (measured, reference) cells of a successful measurement
CELLS: dict[str, Callable[[dict], tuple[str, str]]] = {
    "inference": lambda r: (fmt_s(r["model_s"]), f"{fmt_s(r['reference_s'])} {r['reference']}"),
    "backbones": lambda r: (fmt_s(r["model_s"]), _resnet_times(r)),
    "training": lambda r: (f"{r['s_per_iter']:.3f} s/iter = {r['images_per_s']:.1f} img/s", ""),
    "loader": lambda r: (f"{r['images_per_s']:.1f} img/s", _training_reference(r)),
    "convert": lambda r: (f"{r['seconds']:.2f} s = {r['rows_per_s']:,.0f} rows/s", ""),
}
# section -> ratio cell, where it is not the row's ``"ratio"``
RATIO_CELLS: dict[str, Callable[[dict], str]] = {"backbones": _backbone_ratios}


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per measurement: section, case, measured, reference, ratio, target, result."""
    rows = []
    for section, cells in CELLS.items():
        entries = results.get(section) or []
        for r in [entries] if isinstance(entries, dict) else entries:
            measured, reference = (r["error"][:70], "") if "error" in r else cells(r)
            ratio = RATIO_CELLS.get(section, _ratio)(r)
            target = r.get("target", "")
            rows.append([section, r["case"], measured, reference, ratio, target, _result(r)])
    return rows


def format_table(results: dict[str, Any]) -> str:
    """The printed summary table (``tabulate``)."""
    from tabulate import tabulate

    headers = ["section", "case", "measured", "reference", "ratio", "target", "result"]
    return tabulate(table_rows(results), headers=headers)


def any_failed(results: dict[str, Any]) -> bool:
    """Whether a measurement raised (its row holds ``"error"``)."""
    rows = [r for k in ("inference", "backbones", "training", "loader") for r in results.get(k, [])]
    return any("error" in r for r in rows + [results.get("convert") or {}])


def finite(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` (json has no nan/inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` (non-finite floats as null) to ``path`` atomically; raises ``OSError``."""
    atomic_write_json(path, finite(results), indent=1)
