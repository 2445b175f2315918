"""Convert RSNA (or phantom) raw splits into the COCO json of docs/data.md; the same as the
console script ``boneage-convert`` (the code and every option: ``boneage_d2/cli/convert.py``).

    python tools/convert_rsna.py --rsna-root /data/rsna --output-dir datasets/rsna
    python tools/convert_rsna.py --labels "Validation Dataset.csv" \\
        --images boneage-validation-dataset --output datasets/rsna/val.json

Torch-free: runs without PyTorch or Detectron2.
"""

from boneage_d2.cli.convert import build_parser, cli, main

__all__ = ["build_parser", "cli", "main"]

if __name__ == "__main__":
    cli()
