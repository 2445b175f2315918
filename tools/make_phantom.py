"""Write a synthetic phantom dataset in the raw RSNA layout (docs/data.md); the same as the
console script ``boneage-phantom`` (the code and every option: ``boneage_d2/cli/phantom.py``).

    python tools/make_phantom.py --output-dir datasets/phantom --num-train 800 --num-val 100 \\
        --num-test 100 --seed 0 --workers 2

Torch-free: runs without PyTorch or Detectron2.
"""

from boneage_d2.cli.phantom import build_parser, cli, main

__all__ = ["build_parser", "cli", "main"]

if __name__ == "__main__":
    cli()
