"""``boneage-export``: a trained bone-age model to TorchScript and ONNX, checked against the
eager model (``python tools/export_model.py`` runs the same).

    boneage-export --config-file outputs/demo/alanet/config.yaml \\
        --weights outputs/demo/alanet/model_final.pth --output-dir outputs/export/alanet

Writes ``model.ts`` (traced through Detectron2's ``TracingAdapter``), ``model.onnx`` (opset 17,
dynamic image size) and ``export.json`` (inputs, outputs, what each format gave, provenance and
the parity measured here). Parity: the exported graphs and ``BoneAgePredictor`` on ``--check``
phantom films (or ``--check-files``); ALA-Net's ROIs are matched as sets, then their order is
compared. The run fails when the age differs by more than ``--age-tol`` months, a matched ROI
box by more than ``--box-tol`` px, the ROI counts differ, or the two order the ROIs differently.
``export.json`` also says what a consumer of the graph must do to a film first
(``preprocessing``: the intensity pipeline and the resize). HandSeg-RAN does not export
(docs/export.md says why). Trailing ``KEY VALUE`` pairs override the config.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["build_parser", "cli", "main", "preprocessing"]


def preprocessing(cfg) -> dict:
    """What a consumer of the graph must do to a film before ``image``: the config's intensity
    pipeline (docs/inputs.md) and test resize (docs/export.md)."""
    n = cfg.BONEAGE.INPUT.INTENSITY
    intensity = {"name": n.NAME, "dicom_window_index": int(n.DICOM_WINDOW_INDEX)}
    if n.NAME == "percentiles":
        intensity.update(low_pct=float(n.LOW_PCT), high_pct=float(n.HIGH_PCT))
    return {
        "intensity": intensity,
        "resize_long_side": int(cfg.BONEAGE.INPUT.LONG_SIDE_TEST),
        "resize_interpolation": "bilinear, sizes rounded to whole pixels",
        "grey_to_channels": "the uint8 grey film repeated into 3 channels, as float32 0-255",
    }


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``boneage-export``."""
    p = argparse.ArgumentParser(
        prog="boneage-export", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--config-file",
        required=True,
        help="the config the model was trained with (a path or a packaged config name), or a "
        "model package folder (its config and weights)",
    )
    p.add_argument("--weights", help="checkpoint (.pth); a model package brings its own")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--format", nargs="+", default=["torchscript", "onnx"])
    p.add_argument("--check", type=int, default=4, help="phantom films for the parity check")
    p.add_argument("--check-files", nargs="*", default=[], help="radiographs to check on")
    p.add_argument("--age-tol", type=float, default=0.05, help="months")
    p.add_argument("--box-tol", type=float, default=0.5, help="pixels")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p


def main(argv: list[str] | None = None) -> int:
    """Export and check parity; returns 0, 1 (parity over tolerance) or 2 (export failed)."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.weights and not Path(args.weights).is_file():
        p.error(f"--weights {args.weights}: file not found")
    from ..engine.model_package import is_model_package

    if not args.weights and not is_model_package(args.config_file):
        p.error("--weights is required unless --config-file is a model package")

    from ..engine import ConfigError, load_inference_config
    from ..engine.predictor import BoneAgePredictor
    from ..export import (
        ExportedBoneAgeModel,
        ExportError,
        export_model,
        parity_with_predictor,
    )
    from ..io.atomic import atomic_write_json
    from ..io.radiograph import read_radiograph
    from ..phantom import PhantomConfig, sample_phantom

    try:
        cfg = load_inference_config(
            args.config_file, args.opts + ["MODEL.DEVICE", "cpu"], args.weights
        )
    except ConfigError as e:
        p.error(str(e))
    cfg.freeze()
    predictor = BoneAgePredictor(cfg)
    films = [
        read_radiograph(f, predictor.intensity, predictor.max_pixels) for f in args.check_files
    ]
    films += [sample_phantom(PhantomConfig(), seed=7, image_id=i).image for i in range(args.check)]
    if not films:
        p.error("nothing to check parity on: --check N or --check-files")
    example = predictor.model_input(films[0], True)["image"]
    out = Path(args.output_dir)
    provenance = {"config_file": args.config_file, "weights": cfg.MODEL.WEIGHTS}
    try:
        info = export_model(predictor.model, example, True, out, tuple(args.format), provenance)
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    males = [i % 2 == 0 for i in range(len(films))]
    failed = False
    info["parity"] = {}
    for fmt, name in info["formats"].items():
        if name.startswith("failed"):
            print(f"{fmt}: {name}")
            continue
        worst = parity_with_predictor(
            ExportedBoneAgeModel(out / name, cfg), predictor, films, males
        )
        ok = worst["age_months"] <= args.age_tol and worst["box_px"] <= args.box_tol
        ok &= worst["roi_count_differs"] == 0 and worst["rois_out_of_order"] == 0
        failed |= not ok
        info["parity"][fmt] = {**worst, "films": len(films), "ok": ok}
        print(f"{fmt}: {out / name}  parity on {len(films)} films: {json.dumps(worst)}"
              + ("" if ok else "  OVER TOLERANCE"))  # fmt: skip
    info["preprocessing"] = preprocessing(cfg)
    atomic_write_json(out / "export.json", info, indent=1)
    return 1 if failed else 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
