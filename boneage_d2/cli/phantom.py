"""``boneage-phantom``: write a synthetic phantom dataset in the raw RSNA layout (docs/data.md;
``python tools/make_phantom.py`` runs the same). Torch-free.

Example::

    boneage-phantom --output-dir datasets/phantom --num-train 800 --num-val 100 \\
        --num-test 100 --seed 0 --workers 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..phantom import DISTRACTOR_KINDS, PhantomConfig, generate_phantom_dataset
from ..utils.argtypes import int_at_least, number_above

__all__ = ["build_parser", "cli", "main"]


def _probability(text: str) -> float:
    x = number_above(0, inclusive=True)(text)
    if x > 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text}")
    return x


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``make_phantom`` (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="make_phantom",
        description="Generate synthetic hand radiographs whose bones encode age and sex, written "
        "in the raw RSNA layout (CSV/xlsx labels, PNGs, BoNet keypoint jsons, masks, "
        "phantom_truth.json).",
    )
    p.add_argument("--output-dir", required=True, help="folder to write the raw layout into")
    p.add_argument(
        "--num-train", type=int_at_least(0, "a count"), required=True, help="training images"
    )
    p.add_argument(
        "--num-val", type=int_at_least(0, "a count"), required=True, help="validation images"
    )
    p.add_argument("--num-test", type=int_at_least(0, "a count"), required=True, help="test images")
    p.add_argument(
        "--seed",
        type=int_at_least(0),
        required=True,
        help="random seed >= 0 (output is deterministic)",
    )
    p.add_argument(
        "--image-long-side", type=int_at_least(64), default=512, help="image long side in px [512]"
    )
    p.add_argument(
        "--label-noise-months",
        type=number_above(0, inclusive=True),
        default=3.0,
        help="sd of the label noise around the appearance age, months [3]",
    )
    p.add_argument(
        "--distractor-prob",
        type=_probability,
        default=None,
        help="one probability for every distractor kind "
        f"({', '.join(DISTRACTOR_KINDS)}); default: per-kind defaults",
    )
    p.add_argument("--no-distractors", action="store_true", help="turn every distractor off")
    p.add_argument(
        "--age-distribution",
        choices=("normal", "uniform"),
        default="normal",
        help="appearance-age distribution: RSNA-like normal(127, 42) or uniform [normal]",
    )
    p.add_argument("--workers", type=int_at_least(1), default=1, help="parallel processes [1]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, generate the dataset, print a one-line summary; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num_train + args.num_val + args.num_test == 0:
        parser.error("--num-train, --num-val and --num-test are all 0: nothing to generate")
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        parser.error(f"--output-dir {args.output_dir!r} is a file, not a folder")
    cfg = PhantomConfig(
        image_long_side=args.image_long_side,
        label_noise_months=args.label_noise_months,
        distractors=not args.no_distractors,
        age_distribution=args.age_distribution,
    )
    if args.distractor_prob is not None:
        cfg.distractor_probs = {k: args.distractor_prob for k in DISTRACTOR_KINDS}
    try:
        summary = generate_phantom_dataset(
            args.output_dir,
            cfg,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            seed=args.seed,
            workers=args.workers,
            progress=not args.no_progress,
        )
    except OSError as e:  # the generator reads nothing: any OSError is a failed write
        print(
            f"make_phantom: error: cannot write to --output-dir {args.output_dir!r}: {e}",
            file=sys.stderr,
        )
        return 2
    except ValueError as e:
        print(f"make_phantom: error: {e}", file=sys.stderr)
        return 2
    s = summary["splits"]
    print(
        f"phantom: wrote {summary['num_images']} images (train {s['train']}, val {s['val']}, "
        f"test {s['test']}) to {summary['output_dir']} in {summary['total_seconds']:.1f} s "
        f"({summary['images_per_second']:.1f} img/s, {summary['workers']} workers), "
        f"seed {summary['seed']}, long side {summary['image_long_side']} px, "
        f"male {summary['male_fraction']:.2f}, bone age {summary['boneage_mean']:.1f}"
        f"+-{summary['boneage_sd']:.1f} months"
    )
    return 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
