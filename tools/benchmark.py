"""Command line: inference, backbone, training, data-loading and conversion costs, with ratios.

    python tools/benchmark.py                       # everything, outputs/benchmark/benchmark.json
    python tools/benchmark.py --only inference --threads 2
    python tools/benchmark.py --only backbones --batch 4
    python tools/benchmark.py --quick --only loader,training --datasets-root datasets
    python tools/benchmark.py --only convert --convert-rows 500 --convert-workers 2

What is measured (random-init weights, nothing downloaded; CPU always, and the GPU in fp32 and
``torch.autocast`` fp16 when CUDA is available):

- **inference**: each model against its reference on the same input, batch 1 and ``--batch``:
  ALA-Net (``configs/ALA-Net/paper.yaml``) and the global baseline (``configs/Global/
  R50-ordinal.yaml``) against a bare ResNet forward (``build_resnet_backbone`` from the same
  config and weights) on the tensor the model's own backbone reads; HandSeg-RAN
  (``configs/HandSeg-RAN/paper.yaml``) against a plain ``GeneralizedRCNN`` Mask R-CNN built from
  the same config, sharing its detector weights (so both find the same detections). Runs are
  interleaved (model, reference, reference, model, ...) under ``torch.inference_mode`` after
  warm-up; medians are compared.
- **backbones**: each EfficientNet-Lite backbone (lite0, lite1, lite2 channels-last as the
  configs run them, and lite0 channels-first) against Detectron2's ResNet-18 and ResNet-50
  (``build_resnet_backbone``, BN), all bare backbones with random weights to ``res5`` in eval
  mode, on one random square input (256 and 512 px; quick 128 px), batch 1 and ``--batch``. All
  six run interleaved under ``torch.inference_mode`` after warm-up; each Lite's median is given
  as a ratio to each ResNet's (``ratio_r18``, ``ratio_r50``).
- **training**: seconds per iteration of each ``configs/*/R18-phantom-demo.yaml`` (Detectron2's
  ``SimpleTrainer.run_step``, or ``AMPTrainer`` for fp16), on batches already loaded, so the
  figure is the images/s the data loader has to sustain.
- **loader**: images/s of ``BoneAgeTrainer.build_train_loader(cfg)`` alone (its configured
  workers), against the training images/s of the same config.
- **convert**: ``convert_split`` on an RSNA-sized input (12,611 rows with keypoints, masks off;
  ``--convert-rows``, ``--convert-workers``, ``--convert-seed``): one small real PNG per row and
  a 17-point keypoint json, generated untimed. Timed: the whole call (reading and checking the
  CSV and keypoints, every PNG header and trailer, the annotations, the json and the report).

Training and loader data: a small phantom set generated and converted in a temporary folder, or
``<--datasets-root>/phantom/coco/train.json`` when that option is given.

Exit status: 0 when every measurement ran (a MISS is a result, not a failure), 1 when one
raised (its error is in the json and the table), 2 on bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from boneage_d2.benchmark import (
    MIN_REPEATS,
    RSNA_TRAIN_ROWS,
    SECTIONS,
    InferenceCase,
    any_failed,
    attempt,
    bench_backbones,
    bench_convert,
    bench_inference,
    bench_training_and_loader,
    convert_case,
    format_table,
    load_average,
    log,
    machine_info,
    make_settings,
    write_results,
)
from boneage_d2.utils.argtypes import int_at_least, number_above

__all__ = ["INFERENCE_CASES", "TRAINING_CONFIGS", "build_parser", "cli", "main", "run"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = "outputs/benchmark/benchmark.json"

INFERENCE_CASES = (
    InferenceCase("ALA-Net", "configs/ALA-Net/paper.yaml", "backbone", 1.25),
    InferenceCase("HandSeg-RAN", "configs/HandSeg-RAN/paper.yaml", "mask_rcnn", 1.5),
    # The global baseline is pooling + head over the backbone: held to ALA-Net's bound.
    InferenceCase("Global", "configs/Global/R50-ordinal.yaml", "backbone", 1.25),
)
TRAINING_CONFIGS = (
    "configs/Global/R18-phantom-demo.yaml",
    "configs/ALA-Net/R18-phantom-demo.yaml",
    "configs/HandSeg-RAN/R18-phantom-demo.yaml",
)


class UsageError(Exception):
    """Bad command-line input; ``main`` prints it as one ``error:`` line and returns 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print the usage and exit
        raise UsageError(message)


# options that set a size of ``Settings`` (None: its default, or its quick default)
_SIZE_OPTIONS = (
    "batch",
    "warmup",
    "repeats",
    "budget_s",
    "train_iters",
    "loader_batches",
    "num_images",
    "convert_rows",
)
_positive_int = int_at_least(1)
_nonneg_int = int_at_least(0)
_nonneg_float = number_above(0, inclusive=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``benchmark`` (exposed for documentation and tests)."""
    p = _Parser(
        prog="benchmark",
        description="Inference, backbone, training, data-loader and conversion costs, with ratios.",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help=f"sections to run, repeatable or comma-separated: {', '.join(SECTIONS)} [all]",
    )
    p.add_argument("--output", default=DEFAULT_OUTPUT, help=f"json written [{DEFAULT_OUTPUT}]")
    p.add_argument("--quick", action="store_true", help="tiny sizes and repeats (tests, smoke)")
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads [torch's default]")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: the CPU, and the GPU when CUDA is available [auto]",
    )
    p.add_argument(
        "--datasets-root",
        help="use <root>/phantom/coco/train.json for training and loader "
        "[default: generate a small phantom set in a temporary folder]",
    )
    p.add_argument(
        "--batch", type=_positive_int, help="larger batch of inference, backbones [8; quick 2]"
    )
    p.add_argument("--repeats", type=_positive_int, help="timed runs per model [7; quick 2]")
    p.add_argument("--warmup", type=_nonneg_int, help="untimed runs per model first [1]")
    p.add_argument(
        "--budget-s",
        type=_nonneg_float,
        help=f"stop repeating a comparison after this many seconds (at least {MIN_REPEATS} "
        "runs) [60; quick 5]",
    )
    p.add_argument("--train-iters", type=_positive_int, help="timed training iterations [5; 2]")
    p.add_argument("--loader-batches", type=_positive_int, help="timed loader batches [8; 3]")
    p.add_argument("--num-images", type=_positive_int, help="phantom training images [64; 8]")
    p.add_argument(
        "--convert-rows",
        type=_positive_int,
        help=f"rows of the conversion input [{RSNA_TRAIN_ROWS:,}; quick 40]",
    )
    p.add_argument(
        "--convert-workers", type=_positive_int, default=1, help="convert_split processes [1]"
    )
    p.add_argument(
        "--convert-seed", type=_nonneg_int, default=0, help="seed of the conversion input [0]"
    )
    return p


def _sections(values: list[str] | None) -> list[str]:
    if not values:
        return list(SECTIONS)
    chosen = [v.strip() for text in values for v in text.split(",") if v.strip()]
    unknown = sorted({v for v in chosen if v not in SECTIONS})
    if unknown or not chosen:
        raise UsageError(f"--only: unknown section {unknown or values}; choose from {SECTIONS}")
    return [sec for sec in SECTIONS if sec in chosen]


def _check_output(path: Path) -> None:
    """Fail now, not after an hour of measuring, when ``path`` cannot be written."""
    if path.is_dir():
        raise UsageError(f"--output {path}: is a folder, expected a json file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as e:
        raise UsageError(f"--output {path}: cannot write there ({e.strerror or e})") from None


def _datasets_json(root: str | None) -> Path | None:
    if root is None:
        return None
    path = Path(root)
    if not path.is_dir():
        raise UsageError(f"--datasets-root {root}: folder not found")
    json_file = path / "phantom" / "coco" / "train.json"
    if not json_file.is_file():
        raise UsageError(
            f"--datasets-root {root}: {json_file} not found (create it with tools/demo.py, or "
            "tools/make_phantom.py + tools/convert_rsna.py)"
        )
    return json_file


def _devices(choice: str) -> list[str]:
    import torch

    has_gpu = torch.cuda.is_available()
    if choice == "cuda" and not has_gpu:
        raise UsageError("--device cuda: no CUDA GPU is available")
    if choice == "auto":
        return ["cpu", "cuda"] if has_gpu else ["cpu"]
    return [choice]


def run(
    args: argparse.Namespace,
    sections: list[str],
    devices: list[str],
    save: Callable[[dict], None] = lambda results: None,
) -> dict[str, Any]:
    """Run the chosen sections; returns the results dict that is written as json. ``save`` is
    called with the results so far after each section (a long run killed midway keeps them)."""
    import torch

    load_before = load_average()
    if args.threads:
        torch.set_num_threads(args.threads)
    s = make_settings(args.quick, **{name: getattr(args, name) for name in _SIZE_OPTIONS})
    results: dict[str, Any] = {
        "machine": machine_info(devices),
        "load_average_before": load_before,
        "settings": {**asdict(s), "sections": sections, "datasets_root": args.datasets_root},
    }
    if "inference" in sections:
        results["inference"] = bench_inference(INFERENCE_CASES, devices, s, REPO)
        save(results)
    if "backbones" in sections:
        results["backbones"] = bench_backbones(devices, s)
        save(results)
    wanted = {"training", "loader"} & set(sections)
    if wanted:
        json_file = _datasets_json(args.datasets_root)
        training, loaders = bench_training_and_loader(
            TRAINING_CONFIGS, devices, s, wanted, json_file=json_file, root=REPO
        )
        if "training" in wanted:
            results["training"] = training
        if "loader" in wanted:
            results["loader"] = loaders
        save(results)
    if "convert" in sections:
        log(f"convert: {s.convert_rows:,} rows ...")
        row = {"case": convert_case(s.convert_rows, args.convert_workers)}
        measure = (s.convert_rows, args.convert_workers, args.convert_seed)
        results["convert"] = attempt(row, bench_convert, *measure)
    results["load_average_after"] = load_average()
    return results


def _json_writer(output: Path) -> Callable[[dict], None]:
    def save(results: dict) -> None:
        try:
            write_results(output, results)
        except OSError as e:
            raise UsageError(f"--output {output}: cannot write ({e.strerror or e})") from None

    return save


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 (all measured), 1 (a measurement failed) or 2 (bad input)."""
    try:
        args = build_parser().parse_args(argv)
        sections = _sections(args.only)
        output = Path(args.output)
        _check_output(output)
        _datasets_json(args.datasets_root)
        devices = _devices(args.device)
        save = _json_writer(output)
        results = run(args, sections, devices, save)
        save(results)
    except UsageError as e:
        print(f"benchmark: error: {e}", file=sys.stderr)
        return 2
    print(format_table(results))
    la = results["load_average_before"], results["load_average_after"]
    print(f"\nload average (1, 5, 15 min) before {la[0]}, after {la[1]}; wrote {output}")
    return 1 if any_failed(results) else 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
