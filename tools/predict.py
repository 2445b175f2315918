"""Predict bone age for radiographs with a trained model; the same as the console script
``boneage-predict`` (the code and every option: ``boneage_d2/cli/predict.py``, ``--help``).

    python tools/predict.py --config-file configs/ALA-Net/R18-phantom-demo.yaml \\
        --weights output/alanet_r18_demo/model_final.pth \\
        --input scans/ --sex-csv scans/sex.csv --output-dir outputs/predict --overlays
"""

from boneage_d2.cli.predict import build_parser, cli, draw_outputs, main, write_contact_sheet

__all__ = ["build_parser", "cli", "draw_outputs", "main", "write_contact_sheet"]

if __name__ == "__main__":
    cli()
