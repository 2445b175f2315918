"""Flag rates of :class:`ImageChecks` on clean films and on the synthetic bad inputs made from
them: the false-flag and miss rates of ``docs/input_checks.md``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from .image_checks import ImageChecks
from .perturb import BAD_INPUTS

__all__ = ["FlagRate", "flag_rates", "rates_markdown"]


class FlagRate(dict):
    """One row: ``source``, ``case`` (``clean`` or a bad input), ``n``, ``expected`` (the flag
    the case must raise; ``""`` for clean films), ``hit_rate`` (share with the expected flag;
    for clean films the share with no flag), ``flagged_rate`` (share with any flag) and
    ``silent_rate`` (share with no flag at all: what a bad input must not be) and ``flags``
    (flag -> count)."""


def flag_rates(
    films: dict[str, Iterable[np.ndarray]],
    checks: ImageChecks | None = None,
    bad_per_source: int = 50,
) -> list[FlagRate]:
    """Run ``checks`` on every film of each source and on the :data:`BAD_INPUTS` made from its
    first ``bad_per_source`` films; one :class:`FlagRate` per (source, case)."""
    checks = checks or ImageChecks()
    rows = []
    for source, stream in films.items():
        counts: dict[str, list[list[str]]] = {"clean": []}
        for i, gray in enumerate(tqdm(stream, desc=f"checks: {source}", unit="film")):
            counts["clean"].append(checks.flags(gray))
            if i < bad_per_source:
                for case, (make, _) in BAD_INPUTS.items():
                    counts.setdefault(case, []).append(checks.flags(make(gray)))
        for case, results in counts.items():
            expected = BAD_INPUTS[case][1] if case in BAD_INPUTS else ""
            n = len(results)
            hits = sum((expected in f) if expected else not f for f in results)
            rows.append(
                FlagRate(
                    source=source,
                    case=case,
                    n=n,
                    expected=expected,
                    hit_rate=hits / n if n else 0.0,
                    flagged_rate=sum(bool(f) for f in results) / n if n else 0.0,
                    silent_rate=sum(not f for f in results) / n if n else 0.0,
                    flags=dict(Counter(x for f in results for x in f).most_common()),
                )
            )
    return rows


def rates_markdown(rows: list[FlagRate]) -> str:
    """The rows as a markdown table: for clean films the false-flag rate; for bad inputs the
    share missing their own flag and the share passing with no flag at all."""
    lines = [
        "| source | case | n | must raise | false flags / misses | no flag at all | flags raised |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for r in rows:
        miss = 1.0 - r["hit_rate"]
        label = "false flags" if not r["expected"] else "misses"
        raised = ", ".join(f"{k} {v}" for k, v in r["flags"].items()) or "none"
        silent = f"{100 * r['silent_rate']:.1f} %" if r["expected"] else "-"
        lines.append(
            f"| {r['source']} | {r['case']} | {r['n']} | {r['expected'] or '(none)'} "
            f"| {100 * miss:.1f} % {label} | {silent} | {raised} |"
        )
    return "\n".join(lines) + "\n"
