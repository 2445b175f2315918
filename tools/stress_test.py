"""Robustness stress test: MAE and flag rate of a model under controlled perturbations.

    python tools/stress_test.py --config-file outputs/demo/alanet/config.yaml \\
        --weights outputs/demo/alanet/model_final.pth --dataset phantom_boneage_val \\
        --max-images 100 --output-dir outputs/stress/alanet

Re-evaluates the model on a registered, labelled split after rotating the films (+-15, +-30
deg), mirroring, gamma 0.6 / 1.6, Gaussian noise, JPEG quality 30 / 10, halving the
resolution, inverting and pasting an L/R tag (``boneage_d2.engine.stress``). Writes
``stress.md`` (table), ``stress.json`` and ``stress.png`` (plot). Trailing ``KEY VALUE`` pairs
override the config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--dataset", required=True, help="a registered split with bone-age labels")
    p.add_argument("--max-images", type=int, default=0, help="the first N films (0: all)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--output-dir", required=True)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = p.parse_args(argv)
    if not Path(args.weights).is_file():
        p.error(f"--weights {args.weights}: file not found")
    if args.max_images < 0 or args.batch_size < 1:
        p.error("--max-images must be >= 0 and --batch-size >= 1")

    from detectron2.data import DatasetCatalog

    import boneage_d2  # noqa: F401  (registers architectures and datasets)
    from boneage_d2.engine import ConfigError, load_inference_config
    from boneage_d2.engine.predictor import BoneAgePredictor
    from boneage_d2.engine.stress import stress_markdown, stress_test
    from boneage_d2.io.atomic import atomic_open, atomic_write_json
    from boneage_d2.vis.report import plot_stress

    try:
        cfg = load_inference_config(args.config_file, args.opts, args.weights)
    except ConfigError as e:
        p.error(str(e))
    if args.dataset not in DatasetCatalog.list():
        p.error(f"--dataset {args.dataset}: not a registered dataset")
    cfg.freeze()
    records = DatasetCatalog.get(args.dataset)
    records = records[: args.max_images] if args.max_images else records
    rows = stress_test(BoneAgePredictor(cfg), records, batch_size=args.batch_size)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = stress_markdown(rows)
    with atomic_open(out / "stress.md") as f:
        f.write(table)
    meta = {"config_file": args.config_file, "weights": args.weights, "dataset": args.dataset}
    atomic_write_json(out / "stress.json", {**meta, "rows": rows}, indent=1)
    title = f"{cfg.MODEL.META_ARCHITECTURE} on {args.dataset} ({len(records)} films)"
    plot_stress(rows, out / "stress.png", title)
    print(table)
    print(f"written: {out / 'stress.md'}, {out / 'stress.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
