"""Export a trained bone-age model to TorchScript and ONNX and check it against the eager model;
the same as the console script ``boneage-export`` (the code and every option:
``boneage_d2/cli/export.py``, docs/export.md).

    python tools/export_model.py --config-file outputs/demo/alanet/config.yaml \\
        --weights outputs/demo/alanet/model_final.pth --output-dir outputs/export/alanet
"""

from boneage_d2.cli.export import build_parser, cli, main, preprocessing

__all__ = ["build_parser", "cli", "main", "preprocessing"]

if __name__ == "__main__":
    cli()
