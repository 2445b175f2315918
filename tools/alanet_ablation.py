#!/usr/bin/env python
"""ALA-Net's Table 1 / Table 2 ablations on phantom data: every row trained with tools/train_net.py
at the same seed and iteration budget, then one markdown table.

    python tools/alanet_ablation.py --output-dir outputs/alanet_ablation --iters 1500

Rows: mean predictor, global baseline ("ResNet only"), + local extraction, + patch training
(annotated ROIs), full ALA-Net, vanilla RPN (ROI AP only), and the ordinal formulations on full
ALA-Net. Each row is its own process; results come from the run's final evaluation
(``metrics.json``). A finished row is reused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from boneage_d2.engine.config_checks import own_config_opts
from boneage_d2.utils.run_logs import final_metrics

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs/ALA-Net/R18-phantom-demo.yaml"
CONFIGS = REPO / "configs/ALA-Net"

# name -> (description, the yaml whose own keys are the row's change to the demo config; None =
# the demo itself). The yaml files are the paper-scale ablation configs: one delta, two scales.
ROWS: dict[str, tuple[str, str | None]] = {
    "global": ("ResNet only (global baseline)", "ablation-resnet50-only.yaml"),
    "local": ("+ local extraction", "ablation-local-extraction.yaml"),
    "patch": ("+ patch training (annotated ROIs)", "ablation-patch-training.yaml"),
    "full": ("ALA-Net (local extraction + patch training)", None),
    "vanilla_rpn": ("vanilla RPN (no age task)", "vanilla-rpn.yaml"),
    "full_rpn_x5": ("ALA-Net, RPN loss weight 5", "ablation-rpn-loss-x5.yaml"),
    "full_coral": ("ALA-Net, CORAL ordinal layer", "ablation-coral.yaml"),
    "full_corn": ("ALA-Net, CORN ordinal loss", "ablation-corn.yaml"),
    "full_corn_12mo": ("ALA-Net, CORN, 12-month ranks (21)", "ablation-corn-12mo.yaml"),
}


def row_opts(name: str) -> list[str]:
    """The row's ``KEY VALUE`` overrides: the keys its yaml sets itself (not its bases')."""
    config = ROWS[name][1]
    return own_config_opts(CONFIGS / config, exclude=("OUTPUT_DIR",)) if config else []


def run_row(name: str, args) -> dict[str, float]:
    run_dir = Path(args.output_dir) / name
    metrics = final_metrics(run_dir)
    if metrics and not args.force:
        print(f"[{name}] reusing {run_dir}")
        return metrics
    cmd = [
        sys.executable,
        str(REPO / "tools/train_net.py"),
        "--config-file",
        str(DEMO),
        *row_opts(name),
        "SOLVER.MAX_ITER",
        str(args.iters),
        "SEED",
        str(args.seed),
        "DATASETS.TRAIN",
        f"('{args.train}',)",
        "DATASETS.TEST",
        f"('{args.val}',)",
        "TEST.EVAL_PERIOD",
        "0",
        "OUTPUT_DIR",
        str(run_dir),
        *args.opts,
    ]
    print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
    start = time.time()
    with open(Path(args.output_dir) / f"{name}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    print(f"[{name}] done in {time.time() - start:.0f} s", flush=True)
    return final_metrics(run_dir)


def fmt(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: dict[str, dict[str, float]], args) -> str:
    first = next((m for m in results.values() if "boneage/mean_predictor_MAE" in m), {})
    lines = [
        f"Phantom validation set `{args.val}`, demo config `{DEMO.relative_to(REPO)}`, "
        f"{args.iters} iterations, seed {args.seed}, every row the same budget.",
        "",
        "| row | MAE (months) | 95% CI | RMSE | ROI AP | AP50 | AP75 |",
        "|---|---|---|---|---|---|---|",
        f"| mean predictor (training-set mean) | {fmt(first.get('boneage/mean_predictor_MAE'))} "
        "| | | | | |",
    ]
    for name, m in results.items():
        ci = ""
        if "boneage/MAE_CI95_lo" in m:
            ci = f"{m['boneage/MAE_CI95_lo']:.2f}-{m['boneage/MAE_CI95_hi']:.2f}"
        lines.append(
            f"| {ROWS[name][0]} | {fmt(m.get('boneage/MAE'))} | {ci} "
            f"| {fmt(m.get('boneage/RMSE'))} | {fmt(m.get('roi/AP'), 1)} "
            f"| {fmt(m.get('roi/AP50'), 1)} "
            f"| {fmt(m.get('roi/AP75'), 1)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--output-dir", default="outputs/alanet_ablation")
    p.add_argument("--iters", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", default="phantom_boneage_train")
    p.add_argument("--val", default="phantom_boneage_val")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {list(ROWS)}")
    p.add_argument("--force", action="store_true", help="re-run rows that already finished")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="extra config overrides for every row")
    args = p.parse_args(argv)
    rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    os.makedirs(args.output_dir, exist_ok=True)
    results = {name: run_row(name, args) for name in rows}
    text = table(results, args)
    (Path(args.output_dir) / "table.md").write_text(text)
    (Path(args.output_dir) / "results.json").write_text(json.dumps(results, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
