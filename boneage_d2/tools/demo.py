"""The main job on the embedded default data: phantom -> convert -> train -> evaluate -> report.

    python tools/demo.py --output-dir outputs/demo

Each stage runs the project's own CLI (``make_phantom.py``, ``convert_rsna.py``, ``train_net.py``)
in a subprocess with its log beside the results, so every step can be re-run by hand. Generated
data is reused when it was made with the same settings. The report (``report.md``) holds the
results table, with the mean predictor beside every model, and the plots.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# name -> (label, config, extra opts); the demo configs say what they change from the papers.
MODELS = {
    "global": ("Global baseline (R18, ordinal)", "configs/Global/R18-phantom-demo.yaml", []),
    "alanet": ("ALA-Net (R18 demo)", "configs/ALA-Net/R18-phantom-demo.yaml", []),
}


def _run(cmd: list[str], log_path: Path, env: dict | None = None) -> None:
    print(f"$ {' '.join(str(c) for c in cmd)}\n  (log: {log_path})", flush=True)
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    if proc.returncode != 0:
        tail = "".join(open(log_path).readlines()[-25:])
        raise SystemExit(f"error: step failed (exit {proc.returncode}); end of {log_path}:\n{tail}")
    print(f"  done in {time.time() - start:.0f} s", flush=True)


def make_data(args, data_root: Path, logs: Path) -> None:
    """Phantom raw data and its converted jsons, reused when made with the same settings."""
    raw, coco = data_root / "phantom" / "raw", data_root / "phantom" / "coco"
    settings = {
        "num_train": args.num_train,
        "num_val": args.num_val,
        "num_test": args.num_test,
        "seed": args.seed,
    }
    stamp = data_root / "phantom" / "settings.json"
    if (
        stamp.is_file()
        and json.loads(stamp.read_text()) == settings
        and (coco / "val.json").is_file()
    ):
        print(f"[data] reusing {data_root / 'phantom'} (same settings)", flush=True)
        return
    py = sys.executable
    _run(
        [
            py,
            "tools/make_phantom.py",
            "--output-dir",
            str(raw),
            "--num-train",
            str(args.num_train),
            "--num-val",
            str(args.num_val),
            "--num-test",
            str(args.num_test),
            "--seed",
            str(args.seed),
            "--workers",
            str(args.workers),
        ],
        logs / "make_phantom.log",
    )
    _run(
        [
            py,
            "tools/convert_rsna.py",
            "--rsna-root",
            str(raw),
            "--output-dir",
            str(coco),
            "--workers",
            str(args.workers),
        ],
        logs / "convert.log",
    )
    stamp.write_text(json.dumps(settings))


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The last evaluation's flattened results from Detectron2's metrics.json.

    The COCO results of ALA-Net (the ``roi`` task view) are renamed ``roi/AP...`` so they cannot
    be read as hand AP.
    """
    last: dict[str, float] = {}
    path = run_dir / "metrics.json"
    if path.is_file():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if any(k.startswith("boneage/") for k in entry):
                last = entry
    cfg_path = run_dir / "config.yaml"
    if cfg_path.is_file() and "DETECTION_VIEW: roi" in cfg_path.read_text():
        last = {k.replace("bbox/", "roi/", 1): v for k, v in last.items()}
    return last


def train_model(name: str, args, out: Path, env: dict) -> Path:
    label, config, opts = MODELS[name]
    run_dir = out / name
    cmd = [
        sys.executable,
        "tools/train_net.py",
        "--config-file",
        config,
        *opts,
        "OUTPUT_DIR",
        str(run_dir),
        "SEED",
        str(args.seed),
        "TEST.EVAL_PERIOD",
        "0",
        "DATALOADER.NUM_WORKERS",
        str(args.workers),
    ]
    if args.iters:
        cmd += [
            "SOLVER.MAX_ITER",
            str(args.iters),
            "SOLVER.STEPS",
            f"({int(args.iters * 0.67)}, {int(args.iters * 0.87)})",
        ]
    print(f"[train] {label}", flush=True)
    _run(cmd, out / f"train_{name}.log", env)
    return run_dir


def write_report(out: Path, runs: dict[str, Path], val_name: str) -> Path:
    from boneage_d2.report import (
        plot_mae_by_band_and_sex,
        plot_pred_vs_true,
        read_predictions,
        results_table,
    )

    metrics = {MODELS[n][0]: final_metrics(d) for n, d in runs.items()}
    preds = {
        MODELS[n][0]: read_predictions(d / "inference" / val_name / "boneage_predictions.csv")
        for n, d in runs.items()
    }
    plot_pred_vs_true(preds, out / "pred_vs_true.png")
    plot_mae_by_band_and_sex(preds, out / "mae_by_band_sex.png")
    mean_mae = next(
        (
            m["boneage/mean_predictor_MAE"]
            for m in metrics.values()
            if "boneage/mean_predictor_MAE" in m
        ),
        None,
    )
    rows = {"Mean predictor (training-set mean)": {"boneage/MAE": mean_mae}, **metrics}
    text = [
        "# boneage-d2 demo report",
        "",
        f"Phantom validation split `{val_name}`; every model trained from random initialisation "
        "on CPU with its demo config (see each config's header for what it changes from the "
        "paper). MAE 95% CI: bootstrap over images.",
        "",
        results_table(rows),
        "![predicted vs true](pred_vs_true.png)",
        "",
        "![MAE by age band and sex](mae_by_band_sex.png)",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(text))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--output-dir", default="outputs/demo")
    p.add_argument("--datasets-root", default="datasets", help="where phantom/raw and coco go")
    p.add_argument("--models", default=",".join(MODELS), help=f"subset of {list(MODELS)}")
    p.add_argument("--num-train", type=int, default=1500)
    p.add_argument("--num-val", type=int, default=300)
    p.add_argument("--num-test", type=int, default=50)
    p.add_argument("--iters", type=int, default=0, help="override every model's SOLVER.MAX_ITER")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    if min(args.num_train, args.num_val) < 1 or args.num_test < 0:
        p.error("--num-train and --num-val must be >= 1, --num-test >= 0")

    start = time.time()
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(args.datasets_root).resolve()
    make_data(args, data_root, out)
    env = {"OMP_NUM_THREADS": "2", **os.environ, "BONEAGE_DATASETS": str(data_root)}
    runs = {m: train_model(m, args, out, env) for m in models}
    report = write_report(out, runs, "phantom_boneage_val")
    print(f"\nreport: {report}  ({(time.time() - start) / 60:.1f} min in all)")
    print(report.read_text())
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
