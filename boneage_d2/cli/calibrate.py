"""``boneage-calibrate``: bone-age prediction intervals calibrated on a held-out split (split
conformal; ``python tools/calibrate_intervals.py`` runs the same).

    boneage-calibrate --config-file Global/R18-phantom-demo.yaml \\
        --weights outputs/demo/global/model_final.pth --dataset phantom_boneage_val

Runs the model over ``--dataset`` (a registered split with labels, not the training split and
not the test split you will report on), takes the ``ceil((n+1) * coverage)``-th smallest
absolute error as the interval half-width (one for all, or one per band of the predicted age
with ``--method band``) and writes it beside the weights: ``model_final.intervals.json``. From
then on ``BoneAgePredictor``, ``tools/predict.py``, the service and ``train_net.py
--eval-only`` give ``boneage_lo`` / ``boneage_hi`` and the evaluator reports their coverage.
Trailing ``KEY VALUE`` pairs override the config, as in ``train_net.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["build_parser", "cli", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``boneage-calibrate``."""
    p = argparse.ArgumentParser(
        prog="boneage-calibrate",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument(
        "--config-file",
        required=True,
        help="the config the model was trained with (a path or a packaged config name), or a "
        "model package folder: the calibration then goes into the package and its model card",
    )
    p.add_argument("--weights", help="the checkpoint the intervals are for [the package's]")
    p.add_argument("--dataset", required=True, help="a registered, labelled calibration split")
    p.add_argument("--coverage", type=float, help="nominal coverage [BONEAGE.INTERVALS.COVERAGE]")
    p.add_argument("--method", choices=("global", "band"), help="[BONEAGE.INTERVALS.METHOD]")
    p.add_argument("--output", help="the calibration json [beside --weights]")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p


def main(argv: list[str] | None = None) -> int:
    """Calibrate and write the sidecar; returns the exit status (usage errors exit 2)."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.weights and not Path(args.weights).is_file():
        p.error(f"--weights {args.weights}: file not found")
    from ..engine.model_package import is_model_package

    if not args.weights and not is_model_package(args.config_file):
        p.error("--weights is required unless --config-file is a model package")

    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from tqdm import tqdm

    from ..engine import BoneAgeTrainer, ConfigError, load_config, validate_config
    from ..engine.model_package import ModelPackage, update_card_calibration
    from ..evaluation import BoneAgeEvaluator
    from ..evaluation.intervals import (
        calibrate_intervals,
        interval_metrics,
        sidecar_path,
        write_calibration,
    )

    try:
        cfg = load_config(args.config_file, args.opts)
        cfg.MODEL.WEIGHTS = args.weights or cfg.MODEL.WEIGHTS  # a package's own otherwise
        cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), (args.dataset,)
        if args.coverage is not None:
            cfg.BONEAGE.INTERVALS.COVERAGE = args.coverage
        if args.method:
            cfg.BONEAGE.INTERVALS.METHOD = args.method
        cfg.BONEAGE.INTERVALS.CALIBRATION_FILE = ""
        validate_config(cfg, training=False)
    except ConfigError as e:
        p.error(str(e))
    c = cfg.BONEAGE.INTERVALS
    if not 0.0 < c.COVERAGE < 1.0:
        p.error(f"coverage must be in (0, 1), got {c.COVERAGE}")
    cfg.freeze()

    model = BoneAgeTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()
    evaluator = BoneAgeEvaluator(args.dataset, distributed=False)
    loader = BoneAgeTrainer.build_test_loader(cfg, args.dataset)
    evaluator.reset()
    with torch.inference_mode():
        for inputs in tqdm(loader, desc=f"predicting {args.dataset}", unit="batch"):
            evaluator.process(inputs, model(inputs))
    rows = [r for r in evaluator.predictions() or [] if r["boneage_true"] is not None]
    if not rows:
        p.error(f"{args.dataset}: no labelled images to calibrate on")
    pred = [r["boneage_pred"] for r in rows]
    true = [r["boneage_true"] for r in rows]
    try:
        cal = calibrate_intervals(
            pred,
            true,
            coverage=float(c.COVERAGE),
            method=c.METHOD,
            band_edges=tuple(c.BAND_EDGES_MONTHS),
        )
    except ValueError as e:
        p.error(f"{args.dataset}: {e}")
    out = Path(args.output) if args.output else sidecar_path(cfg.MODEL.WEIGHTS)
    extra = {}
    if rows and "boneage_rank_lo" in rows[0]:
        rank = interval_metrics(
            true, [r["boneage_rank_lo"] for r in rows], [r["boneage_rank_hi"] for r in rows]
        )
        extra["rank_interval_on_calibration"] = {
            "coverage": rank["coverage"],
            "mean_width": rank["mean_width"],
        }
    write_calibration(
        out,
        cal,
        dataset=args.dataset,
        weights=str(cfg.MODEL.WEIGHTS),
        config_file=str(args.config_file),
        **extra,
    )
    if is_model_package(args.config_file) and not args.output and not args.weights:
        update_card_calibration(ModelPackage.load(args.config_file), cal, args.dataset)
    print(
        f"{cal['n']} images of {args.dataset}: {100 * cal['coverage']:g} % interval = prediction "
        f"+- {cal['quantile_months']:.1f} months ({cal['method']}); written to {out}"
    )
    if extra:
        r = extra["rank_interval_on_calibration"]
        print(
            f"the ordinal head's own {100 * cal['coverage']:g} % interval covers "
            f"{r['coverage']:.1f} % here (mean width {r['mean_width']:.1f} months)"
        )
    return 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
