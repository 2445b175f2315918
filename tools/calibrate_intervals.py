"""Calibrate bone-age prediction intervals on a held-out split (split conformal); the same as the
console script ``boneage-calibrate`` (the code and every option: ``boneage_d2/cli/calibrate.py``,
docs/intervals.md).

    python tools/calibrate_intervals.py --config-file configs/Global/R18-phantom-demo.yaml \\
        --weights outputs/demo/global/model_final.pth --dataset phantom_boneage_val
"""

from boneage_d2.cli.calibrate import build_parser, cli, main

__all__ = ["build_parser", "cli", "main"]

if __name__ == "__main__":
    cli()
