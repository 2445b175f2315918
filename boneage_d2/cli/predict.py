"""``boneage-predict``: bone age for radiographs with a trained model; writes CSV + JSON,
overlays on request (``python tools/predict.py`` runs the same).

    boneage-predict --config-file ALA-Net/R18-phantom-demo.yaml \\
        --weights output/alanet_r18_demo/model_final.pth \\
        --input scans/ --sex-csv scans/sex.csv --output-dir outputs/predict --overlays

``--config-file`` takes a path, a packaged config name (``boneage_d2.model_zoo``) or a model
package folder, which brings its weights and calibration (``--weights`` not needed):

    boneage-predict --config-file output/alanet_r18_demo/model_package --input scans/ --sex M \\
        --output-dir outputs/predict

Inputs: files, folders (searched recursively) or glob patterns; PNG/JPEG (8- or 16-bit, gray or
RGB) and DICOM (with pydicom). Sex: ``--sex M|F`` for every image, or ``--sex-csv`` with a file
column (``file``, ``filename``, ``id`` or ``Case ID``: a file name, its stem, or a path; the
RSNA CSVs work as they are) and a ``sex`` (M/F) or
``male`` (True/False) column. Outputs in ``--output-dir``:

- ``predictions.csv`` / ``predictions.json``: age in months and years per image; Model A adds
  per-hand ages; ``boneage_lo/hi_months`` when the weights have an interval calibration
  beside them (tools/calibrate_intervals.py), ``boneage_rank_lo/hi_months`` from an ordinal
  head; flags such as ``inverted_polarity``, ``no_hand_found`` and ``unreadable``
  with a short reason each (the run goes on; ``--reject-flagged`` leaves the age of an image
  flagged as not a readable hand film empty; docs/input_checks.md lists the flags); with
  ``--age`` / ``--age-csv`` the chronological age, the delay (bone age - age), the bone-age SDS
  against a reference SD table (docs/sds.md) and the ``sds_beyond_2`` flag;
- ``overlays/<name>.png`` (``--overlays``): hand masks or ROI boxes and the predicted age;
- ``overlays/contact_sheet.jpg`` (``--contact-sheet N``): the first N overlays on one page;
- ``attention/<name>.png`` (``--attention``, Model A): the attention maps over the hand crop.

``--ensemble CONFIG WEIGHTS`` (repeatable) adds models: each film's age is the mean of every
model's (each reading the file through its own config), ``member_ages_months`` lists them, and
the overlays are the first model's. Trailing ``KEY VALUE`` pairs override the config (every
model's), as in ``train_net.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..engine.prediction_io import (
    InputError,
    ages_for_files,
    collect_inputs,
    output_names,
    prediction_record,
    sex_for_files,
    write_prediction_tables,
)
from ..schema import NO_HAND_FLAG


def draw_outputs(inp: dict, output: dict, name: str, out_dir: Path, args) -> np.ndarray | None:
    """The overlay and attention PNGs of one prediction, as requested; returns the overlay."""
    import cv2

    from ..io.radiograph import read_radiograph
    from ..vis.attention import draw_attention_maps
    from ..vis.overlays import draw_prediction

    gray = read_radiograph(inp["file_name"], max_pixels=args.max_pixels)
    rgb = None
    if args.overlays:
        rgb = draw_prediction(gray, output, inp["male"])
        cv2.imwrite(str(out_dir / "overlays" / name), rgb[:, :, ::-1])
    if args.attention and output.get("attention_maps"):
        inst = output.get("instances")
        mask = None
        if inst is not None and len(inst) and NO_HAND_FLAG not in output.get("flags", []):
            mask = inst.pred_masks[int(inst.scores.argmax())].cpu().numpy()
        title = f"{float(output['boneage']):.0f} mo, {'M' if inp['male'] else 'F'}"
        row = draw_attention_maps(
            gray, output["attention_maps"], output["attention_box"], mask, title=title
        )
        cv2.imwrite(str(out_dir / "attention" / name), row)
    return rgb


def write_contact_sheet(overlays: list[np.ndarray], out_dir: Path) -> Path:
    """``overlays/contact_sheet.jpg``: the overlays on one page, five per row."""
    import cv2

    from ..vis import contact_sheet

    path = out_dir / "overlays" / "contact_sheet.jpg"
    cv2.imwrite(str(path), contact_sheet(overlays, cols=5)[:, :, ::-1])
    return path


__all__ = ["build_parser", "cli", "draw_outputs", "main", "write_contact_sheet"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``boneage-predict``."""
    p = argparse.ArgumentParser(
        prog="boneage-predict",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument(
        "--config-file",
        required=True,
        help="the config the model was trained with (a path or a packaged config name), or a "
        "model package folder (train_net's OUTPUT_DIR/model_package: config and weights)",
    )
    p.add_argument("--weights", help="checkpoint (.pth); default: the package's or MODEL.WEIGHTS")
    p.add_argument("--input", nargs="+", required=True, help="files, folders or glob patterns")
    sex = p.add_mutually_exclusive_group(required=True)
    sex.add_argument("--sex", choices=("M", "F", "m", "f"), help="the sex of every image")
    sex.add_argument("--sex-csv", help="CSV with a file column and a sex (M/F) or male column")
    age = p.add_mutually_exclusive_group()
    age.add_argument("--age", type=float, metavar="MONTHS", help="chronological age of every image")
    age.add_argument(
        "--age-csv",
        help="CSV with a file column and an age_months (or age_years) column: adds the delay, "
        "the bone-age SDS and the sds_beyond_2 flag",
    )
    p.add_argument(
        "--sds-table",
        help="reference SD table (sex,age_months,sd_months) [Greulich & Pyle, docs/sds.md]",
    )
    p.add_argument("--output-dir", required=True)
    p.add_argument("--overlays", action="store_true", help="write overlays/<name>.png")
    p.add_argument(
        "--contact-sheet",
        type=int,
        default=0,
        metavar="N",
        help="with --overlays: the first N overlays on one page, overlays/contact_sheet.jpg",
    )
    p.add_argument("--attention", action="store_true", help="write attention/<name>.png (Model A)")
    p.add_argument(
        "--reject-flagged",
        action="store_true",
        help="no age for an image flagged as not a readable hand film (its flags say why)",
    )
    p.add_argument(
        "--ensemble",
        nargs=2,
        action="append",
        default=[],
        metavar=("CONFIG", "WEIGHTS"),
        help="another model whose age is averaged with the first's (repeatable)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        help="refuse (flag unreadable) a file whose header declares more pixels "
        "[BONEAGE.INPUT.MAX_PIXELS of the config, 40 million by default]",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=2, help="image-reading processes")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p


def main(argv: list[str] | None = None) -> int:
    """Predict every input; returns the exit status (0, or 1 when no input could be read)."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.num_workers < 0 or args.contact_sheet < 0:
        p.error("--batch-size must be >= 1, --num-workers and --contact-sheet >= 0")
    if args.max_pixels is not None:
        if args.max_pixels < 1:
            p.error(f"--max-pixels {args.max_pixels}: must be >= 1")
        args.opts = args.opts + ["BONEAGE.INPUT.MAX_PIXELS", str(args.max_pixels)]
    if args.contact_sheet and not args.overlays:
        p.error("--contact-sheet needs --overlays")
    try:
        files = collect_inputs(args.input)
        males = sex_for_files(files, args.sex, args.sex_csv)
        ages = ages_for_files(files, args.age, args.age_csv)
    except InputError as e:
        p.error(str(e))
    if args.age is not None and args.age < 0:
        p.error(f"--age {args.age}: a chronological age is >= 0 months")
    sd_table = None
    if any(a is not None for a in ages):
        from ..reference import DEFAULT_SD_TABLE, SDTable
        from ..reference.sds import SDTableError

        try:
            sd_table = SDTable.load(args.sds_table or DEFAULT_SD_TABLE)
        except SDTableError as e:
            p.error(str(e))

    from tqdm import tqdm

    from ..engine import ConfigError, load_inference_config
    from ..engine.predictor import BoneAgeEnsemble, BoneAgePredictor

    try:
        cfg = load_inference_config(args.config_file, args.opts, args.weights)
        members = [load_inference_config(c, args.opts, w) for c, w in args.ensemble]
    except ConfigError as e:
        p.error(str(e))
    if not cfg.MODEL.WEIGHTS:
        p.error(
            "no weights: pass --weights (a model_final.pth from train_net.py), or a model "
            "package as --config-file"
        )
    cfg.freeze()
    args.max_pixels = int(cfg.BONEAGE.INPUT.MAX_PIXELS)  # the overlays read the files again

    out_dir = Path(args.output_dir)
    for sub, wanted in (("overlays", args.overlays), ("attention", args.attention)):
        if wanted:
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    from ..evaluation.intervals import IntervalCalibrationError

    try:
        predictor = BoneAgePredictor(cfg)
        if members:
            predictor = BoneAgeEnsemble([predictor] + [BoneAgePredictor(c) for c in members])
    except IntervalCalibrationError as e:
        p.error(str(e))
    names = output_names(files)
    records, sheet = [], []
    stream = predictor.predict_files(
        files, males, batch_size=args.batch_size, num_workers=args.num_workers
    )
    for name, age, (inp, output) in zip(names, ages, stream):
        records.append(
            prediction_record(inp, output, args.reject_flagged, age_months=age, sd_table=sd_table)
        )
        if output is not None and (args.overlays or args.attention):
            overlay = draw_outputs(inp, output, name, out_dir, args)
            if overlay is not None and len(sheet) < args.contact_sheet:
                sheet.append(overlay)
    meta = {
        "config_file": args.config_file,
        "weights": cfg.MODEL.WEIGHTS,
        "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
    }
    if members:
        meta["ensemble"] = [
            {"config_file": c, "weights": m.MODEL.WEIGHTS}
            for (c, _), m in zip([(args.config_file, None)] + args.ensemble, [cfg] + members)
        ]
    write_prediction_tables(out_dir, records, meta)
    if sheet:
        path = write_contact_sheet(sheet, out_dir)
        tqdm.write(f"contact sheet of {len(sheet)} overlay(s): {path}")
    bad = sum(1 for r in records if r["error"])
    tqdm.write(
        f"wrote predictions for {len(records)} image(s) to {out_dir / 'predictions.csv'}"
        + (f" ({bad} unreadable: see the 'error' column)" if bad else "")
    )
    if bad == len(records):
        print(
            f"error: none of the {len(records)} input image(s) could be predicted "
            f"(see the 'error' column of {out_dir / 'predictions.csv'})",
            file=sys.stderr,
        )
        return 1
    return 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
