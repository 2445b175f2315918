#!/usr/bin/env python
"""MAE with its 95% CI by sex and age band for trained runs, beside the mean predictor.

    BONEAGE_DATASETS=datasets python tools/results_table.py \\
        --train-dataset rsna_real_boneage_train --dataset rsna_real_boneage_val \\
        --run global=outputs/real/Global --run alanet=outputs/real/ALA-Net

Reads each run's ``inference/<dataset>/boneage_predictions.csv`` (written by ``train_net.py``'s
evaluation), recomputes the metrics with the evaluator's function and prints a markdown table;
the mean predictor always predicts the training split's mean age. ``--ensemble
LABEL=RUN1,RUN2,...`` adds a row for the mean of those runs' ages per film (the same average as
``predict.py --ensemble``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from boneage_d2.utils.argtypes import int_at_least


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", required=True, help="the evaluated split (registered name)")
    p.add_argument("--train-dataset", required=True, help="split whose mean age is the baseline")
    p.add_argument("--run", action="append", required=True, metavar="LABEL=OUTPUT_DIR")
    p.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="LABEL=RUN,RUN",
        help="a row for the mean age of these --run labels",
    )
    p.add_argument("--bootstrap-samples", type=int_at_least(0), default=1000)
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    runs = {}
    for spec in args.run:
        label, sep, folder = spec.partition("=")
        csv_path = Path(folder) / "inference" / args.dataset / "boneage_predictions.csv"
        if not sep or not label:
            p.error(f"--run {spec!r}: expected LABEL=OUTPUT_DIR")
        if not csv_path.is_file():
            p.error(f"--run {spec!r}: no {csv_path} (evaluate the run on {args.dataset} first)")
        runs[label] = csv_path

    import numpy as np
    from detectron2.data import DatasetCatalog

    import boneage_d2  # noqa: F401  (registers the datasets)
    from boneage_d2.evaluation.metrics import boneage_metrics, subgroups
    from boneage_d2.vis import read_predictions, subgroup_table
    from boneage_d2.vis.report import ensemble_predictions

    if args.train_dataset not in DatasetCatalog.list():
        p.error(f"--train-dataset {args.train_dataset!r} is not registered")
    train_mean = float(np.mean([r["boneage"] for r in DatasetCatalog.get(args.train_dataset)]))
    preds = {label: read_predictions(csv_path) for label, csv_path in runs.items()}
    for spec in args.ensemble:
        label, sep, members = spec.partition("=")
        names = [m for m in members.split(",") if m]
        unknown = [m for m in names if m not in preds]
        if not sep or not label or len(names) < 2 or unknown:
            p.error(f"--ensemble {spec!r}: expected LABEL=RUN,RUN,... of --run labels")
        try:
            preds[label] = ensemble_predictions([preds[m] for m in names])
        except ValueError as e:
            p.error(f"--ensemble {spec!r}: {e}")
    rows = {
        label: boneage_metrics(
            pr["true"],
            pr["pred"],
            pr["male"],
            train_mean_months=train_mean,
            bootstrap_samples=args.bootstrap_samples,
        )
        for label, pr in preds.items()
    }
    first = next(iter(preds.values()))  # every run was evaluated on the same --dataset
    groups = subgroups(first["true"], first["male"])
    counts = {k.removeprefix("MAE_"): int(v.sum()) for k, v in groups.items()}
    print(f"{args.dataset}; mean predictor = {train_mean:.1f} months ({args.train_dataset})")
    print("films per group: " + ", ".join(f"{k} {n}" for k, n in counts.items()) + "\n")
    print(subgroup_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
