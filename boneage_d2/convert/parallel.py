"""Per-item work in input order, on a process pool or in this process, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from multiprocessing import Pool
from typing import TypeVar

__all__ = ["map_in_order"]

J = TypeVar("J")
R = TypeVar("R")


def map_in_order(
    func: Callable[[J], R], jobs: Sequence[J], workers: int, desc: str, progress: bool
) -> Iterator[R]:
    """``func(job)`` for every job, yielded in job order; ``workers`` > 1 runs them on a
    ``multiprocessing.Pool`` (``func`` and the jobs must be picklable). A tqdm bar (stderr)
    counts the finished jobs unless ``progress`` is False. Closing the generator early (e.g.
    on the first error in strict mode) stops the pool at once."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=desc, unit="img", disable=not progress)
    try:
        if workers > 1 and len(jobs) > 1:
            chunk = max(1, min(64, len(jobs) // (workers * 8)))
            with Pool(processes=workers) as pool:
                for res in pool.imap(func, jobs, chunksize=chunk):
                    bar.update(1)
                    yield res
        else:
            for job in jobs:
                res = func(job)
                bar.update(1)
                yield res
    finally:
        bar.close()
