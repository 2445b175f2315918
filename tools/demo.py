"""The main job on the embedded default data: phantom -> convert -> train -> evaluate -> report.

    python tools/demo.py --output-dir outputs/demo

Each stage runs the project's own CLI (``make_phantom.py``, ``convert_rsna.py``, ``train_net.py``,
``predict.py``) in a subprocess with its log beside the results, so every step can be re-run by
hand; training progress is echoed as it goes. Generated data is reused when it was made with the
same settings. The report (``report.md``) holds the results table, with the mean predictor beside
every model, the plots, and sample overlays (ROI boxes, hand masks) and attention maps.

The default iteration budgets (``DEMO_ITERS``) keep the whole job within 12 minutes on 2 CPU
cores: every model fine-tunes the EfficientNet-Lite0 ImageNet weights of the 'pretrained' extra
(docs/pretrained.md), enough to beat the mean predictor clearly, not to converge (docs/*.md hold
the longer runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from boneage_d2.evaluation.metrics import beats_mean_predictor
from boneage_d2.utils.run_logs import final_iters, final_metrics

REPO = Path(__file__).resolve().parents[1]

# name -> (label, config, extra opts); the demo configs say what they change from the papers.
MODELS = {
    "global": ("Global baseline (Lite0, L1)", "configs/Global/Lite0-phantom-demo.yaml", []),
    "alanet": ("ALA-Net (Lite0 demo)", "configs/ALA-Net/Lite0-phantom-demo.yaml", []),
    "handseg": ("HandSeg-RAN (Lite0 demo)", "configs/HandSeg-RAN/Lite0-phantom-demo.yaml", []),
}
# Iterations per model in the main job (``--iters`` overrides): the 12-minute budget on 2 cores.
# Each model leaves the mean predictor within it (docs/learning_speed.md has the ablations).
DEMO_ITERS = {"global": 120, "alanet": 230, "handseg": 200}
NUM_SAMPLES = 4  # validation images drawn in the report
_ITER_LINE = re.compile(r"eta: (\S+)\s+iter: (\d+)\s+total_loss: (\S+)")


def _run(cmd: list[str], log_path: Path, env: dict | None = None, tag: str = "") -> None:
    """Run ``cmd`` with its output in ``log_path``; training lines are echoed as progress."""
    print(f"$ {' '.join(str(c) for c in cmd)}\n  (log: {log_path})", flush=True)
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO, env=env, text=True
        )
        for line in proc.stdout:
            log.write(line)
            m = _ITER_LINE.search(line)
            if m:
                eta, it, loss = m.groups()
                print(f"  [{tag}] iter {int(it) + 1}  loss {loss}  eta {eta}", flush=True)
            elif "Running inference on" in line or "Start inference" in line:
                print(f"  [{tag}] evaluating", flush=True)
        proc.wait()
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


def train_model(name: str, args, out: Path, env: dict) -> Path:
    label, config, opts = MODELS[name]
    run_dir = out / name
    iters = args.iters or DEMO_ITERS[name]
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
        "TEST.EVAL_PERIOD",  # one evaluation, at the end (the plateau hook needs a period)
        str(iters),
        "DATALOADER.NUM_WORKERS",
        str(args.workers),
        "SOLVER.MAX_ITER",
        str(iters),
        "SOLVER.STEPS",
        str(tuple(sorted({s for s in (int(iters * 0.67), int(iters * 0.87)) if 0 < s < iters}))),
        "SOLVER.WARMUP_ITERS",
        str(min(50, iters // 10)),
        "SOLVER.CHECKPOINT_PERIOD",
        str(iters),
    ]
    print(f"[train] {label}: {iters} iterations", flush=True)
    _run(cmd, out / f"train_{name}.log", env, tag=name)
    return run_dir


def draw_samples(name: str, run_dir: Path, files: list[Path], out: Path, env: dict) -> list[Path]:
    """Overlays (and Model A's attention maps) of a few validation images via ``predict.py``."""
    _, config, opts = MODELS[name]
    pred_dir = out / "samples" / name
    cmd = [sys.executable, "tools/predict.py", "--config-file", config]
    cmd += ["--weights", str(run_dir / "model_final.pth"), "--output-dir", str(pred_dir)]
    cmd += ["--sex-csv", str(run_dir.parent / "samples" / "sex.csv"), "--overlays"]
    cmd += ["--attention"] if name == "handseg" else []
    cmd += ["--num-workers", "0", "--input", *map(str, files), *opts]
    _run(cmd, out / f"predict_{name}.log", env, tag=name)
    return sorted((pred_dir / "overlays").glob("*.png")) + sorted(
        (pred_dir / "attention").glob("*.png")
    )


def sample_files(data_root: Path, out: Path) -> list[Path]:
    """The first ``NUM_SAMPLES`` validation images, with a sex CSV for ``predict.py``."""
    from boneage_d2.data.catalog import load_boneage_json

    records = load_boneage_json(data_root / "phantom" / "coco" / "val.json")[:NUM_SAMPLES]
    (out / "samples").mkdir(parents=True, exist_ok=True)
    rows = ["file,sex"] + [f"{r['file_name']},{'M' if r['male'] else 'F'}" for r in records]
    (out / "samples" / "sex.csv").write_text("\n".join(rows) + "\n")
    return [Path(r["file_name"]) for r in records]


def _verdict_line(metrics: dict[str, dict[str, float]]) -> str:
    """One sentence: which models clearly beat the mean predictor."""
    verdicts = {name: beats_mean_predictor(m) for name, m in metrics.items()}
    winners = [n for n, v in verdicts.items() if v]
    if len(winners) == len(verdicts):
        return f"All {len(verdicts)} models beat the mean predictor."
    losers = ", ".join(n for n, v in verdicts.items() if not v)
    return f"{len(winners)} of {len(verdicts)} models beat the mean predictor; not: {losers}."


def write_report(
    out: Path, runs: dict[str, Path], val_name: str, samples: dict[str, list[Path]], minutes: float
) -> Path:
    from boneage_d2.vis.report import (
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
    mean_row = next((m for m in metrics.values() if "boneage/mean_predictor_MAE" in m), {})
    rows = {
        "Mean predictor (training-set mean)": {
            k.replace("mean_predictor_", ""): v
            for k, v in mean_row.items()
            if k.startswith("boneage/mean_predictor_MAE")
        },
        **metrics,
    }
    text = [
        "# boneage-d2 demo report",
        "",
        f"Phantom validation split `{val_name}`; every model fine-tuned on CPU from the ImageNet "
        "weights packaged with EfficientNet-Lite0 (the 'pretrained' extra), with its demo config "
        "(see each config's header for how it differs from the paper). MAE 95% CI: bootstrap "
        "over images (the same resamples for the mean predictor). "
        "A model beats the mean when its MAE is at most 0.75x the mean predictor's and the two "
        "intervals do not overlap.",
        "",
        results_table(rows),
        _verdict_line(metrics),
        "",
        "![predicted vs true](pred_vs_true.png)",
        "",
        "![MAE by age band and sex](mae_by_band_sex.png)",
        "",
    ]
    for name, pngs in samples.items():
        if pngs:
            text += [f"## {MODELS[name][0]}: validation samples", ""]
            text += [f"![{p.stem}]({p.relative_to(out)})" for p in pngs] + [""]
    iters = {n: final_iters(d) for n, d in runs.items()}
    text += [
        f"Training iterations: {', '.join(f'{n} {i}' for n, i in iters.items())}. "
        f"Whole job: {minutes:.1f} minutes.",
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
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-val", type=int, default=200)
    p.add_argument("--num-test", type=int, default=20)
    p.add_argument(
        "--iters", type=int, default=0, help=f"every model's SOLVER.MAX_ITER (default {DEMO_ITERS})"
    )
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
    files = sample_files(data_root, out)
    samples = {m: draw_samples(m, d, files, out, env) for m, d in runs.items() if m != "global"}
    minutes = (time.time() - start) / 60
    report = write_report(out, runs, "phantom_boneage_val", samples, minutes)
    print(f"\nreport: {report}  ({(time.time() - start) / 60:.1f} min in all)")
    print(report.read_text())
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
