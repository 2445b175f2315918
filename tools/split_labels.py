#!/usr/bin/env python
"""Split one RSNA label file into train/val label files, stratified by age band and sex.

    python tools/split_labels.py --labels ../shared/rsna_real/boneage-training-dataset.csv \\
        --output-dir datasets/rsna_real/labels --val-fraction 0.2 --seed 0

Writes ``train.csv`` and ``val.csv`` with the input's header (the converter reads them as it
reads the input); the same file and seed always give the same split. Bad rows are left out and
listed. Exit status 2 on bad input, with one ``error:`` line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from boneage_d2.utils.argtypes import number_above


def _fraction(text: str) -> float:
    value = number_above(0.0, inclusive=False)(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--labels", required=True, help="an RSNA label file (.csv or .xlsx)")
    p.add_argument("--output-dir", required=True, help="folder for train.csv and val.csv")
    p.add_argument("--val-fraction", type=_fraction, default=0.2, help="share of each stratum")
    p.add_argument("--seed", type=int, default=0, help="the split's random seed [0]")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if not Path(args.labels).is_file():
        p.error(f"--labels {args.labels}: file not found")
    from boneage_d2.convert import RSNAFormatError
    from boneage_d2.convert.splits import split_label_file

    try:
        split = split_label_file(
            args.labels, args.output_dir, val_fraction=args.val_fraction, seed=args.seed
        )
    except (RSNAFormatError, ValueError) as e:
        p.error(str(e))
    for bad in split.bad_rows:
        print(f"  left out: {bad}")
    print(split.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
