"""Time ``convert_split`` on an RSNA-sized input (12,611 training rows), masks off.

A thin wrapper over ``boneage_d2.tools.benchmark`` (``build_convert_input``, ``bench_convert``;
``tools/benchmark.py --only convert`` runs the same measurement with the other sections). Builds,
in a temporary folder, a training label CSV, one small but real PNG per row and a 17-point
keypoint json, then times one conversion and prints rows/s and total seconds::

    .venv/bin/python tools/benchmark_convert.py            # 12,611 rows
    .venv/bin/python tools/benchmark_convert.py --rows 500 --workers 2

The input generation is not timed. What is timed is the whole ``convert_split`` call: reading
and validating the CSV and the keypoint json, reading every PNG header and trailer, building the
annotations (one hand + 17 ROI boxes per image), writing the json and the report atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/benchmark.py

from benchmark import RSNA_TRAIN_ROWS, bench_convert  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Build the input, time one conversion, print the numbers."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=RSNA_TRAIN_ROWS, help="label rows / images")
    p.add_argument("--workers", type=int, default=1, help="convert_split workers")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.rows < 1 or args.workers < 1:
        p.error("--rows and --workers must be >= 1")
    r = bench_convert(args.rows, args.workers, args.seed)
    print(
        f"input: {args.rows} rows, PNGs 48-160 px per side, 17 keypoints each "
        f"(generated in {r['input_build_s']:.1f} s, not timed)"
    )
    print(r["summary"])
    print(
        f"convert_split (masks off, workers={args.workers}): {r['seconds']:.2f} s total, "
        f"{r['rows_per_s']:,.0f} rows/s, json {r['json_mb']:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
