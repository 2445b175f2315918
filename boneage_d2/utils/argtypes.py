"""argparse ``type=`` parsers shared by the command-line tools: one wording for every bad number."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["int_at_least", "number_above"]


def int_at_least(minimum: int, noun: str = "a whole number") -> Callable[[str], int]:
    """A parser of whole numbers ``>= minimum``; errors read ``expected <noun> >= <minimum>``."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"expected {noun} >= {minimum}, got {n}")
        return n

    return parse


def number_above(bound: float, *, inclusive: bool) -> Callable[[str], float]:
    """A parser of numbers ``> bound`` (``>=`` when ``inclusive``); NaN is always rejected."""
    relation = ">=" if inclusive else ">"

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (x >= bound if inclusive else x > bound):  # comparisons with NaN are False
            raise argparse.ArgumentTypeError(f"expected a number {relation} {bound:g}, got {text}")
        return x

    return parse
