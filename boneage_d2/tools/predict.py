"""Predict bone age for radiographs with a trained model; writes CSV + JSON, overlays on request.

    python tools/predict.py --config-file configs/ALA-Net/R18-phantom-demo.yaml \\
        --weights output/alanet_r18_demo/model_final.pth \\
        --input scans/ --sex-csv scans/sex.csv --output-dir outputs/predict --overlays

Inputs: files, folders (searched recursively) or glob patterns; PNG/JPEG (8- or 16-bit, gray or
RGB) and DICOM (with pydicom). Sex: ``--sex M|F`` for every image, or ``--sex-csv`` with a file
column (``file``, ``filename``, ``id`` or ``Case ID``: a file name, its stem, or a path; the
RSNA CSVs work as they are) and a ``sex`` (M/F) or
``male`` (True/False) column. Outputs in ``--output-dir``:

- ``predictions.csv`` / ``predictions.json``: age in months and years per image; Model A adds
  per-hand ages; flags such as ``no_hand_found`` and ``unreadable`` (the run goes on);
- ``overlays/<name>.png`` (``--overlays``): hand masks or ROI boxes and the predicted age;
- ``attention/<name>.png`` (``--attention``, Model A): the attention maps over the hand crop.

Trailing ``KEY VALUE`` pairs override the config, as in ``train_net.py``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
CSV_COLUMNS = (
    "file",
    "sex",
    "boneage_months",
    "boneage_years",
    "num_hands",
    "hand_ages_months",
    "num_rois",
    "roi_ages_months",
    "flags",
    "error",
)
FILE_HEADERS = ("file", "filename", "file_name", "id", "image id", "case id")


class InputError(ValueError):
    """Bad command-line input; the message says what and where."""


def collect_inputs(patterns: list[str]) -> list[str]:
    """Image files from files, folders (recursive) and glob patterns: sorted, de-duplicated."""
    files: list[str] = []
    for pat in patterns:
        if os.path.isdir(pat):
            files += [
                str(p)
                for p in sorted(Path(pat).rglob("*"))
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            ]
        elif os.path.isfile(pat):
            files.append(pat)
        else:
            matched = sorted(glob.glob(pat, recursive=True))
            if not matched:
                raise InputError(f"--input {pat}: no such file or folder, and no glob match")
            files += [m for m in matched if os.path.isfile(m)]
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]
    if not unique:
        raise InputError(f"--input {' '.join(patterns)}: no images ({'/'.join(IMAGE_SUFFIXES)})")
    return unique


def read_sex_csv(path: str) -> dict[str, bool]:
    """``{name: male}`` from a CSV with a file column and a ``sex`` or ``male`` column; keys are
    the value as written, its base name and its stem, so any of them matches an input file."""
    from boneage_d2.data.rsna import parse_sex

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError(f"--sex-csv {path}: cannot read ({e.strerror or e})") from e
    if not rows:
        raise InputError(f"--sex-csv {path}: empty file")
    header = [h.strip().lower() for h in rows[0]]
    file_col = next((header.index(h) for h in FILE_HEADERS if h in header), None)
    sex_col = next((header.index(h) for h in ("sex", "male") if h in header), None)
    if file_col is None or sex_col is None:
        raise InputError(
            f"--sex-csv {path}: header {rows[0]} needs a file column ({'/'.join(FILE_HEADERS)}) "
            "and a 'sex' (M/F) or 'male' (True/False) column"
        )
    table: dict[str, bool] = {}
    for row_no, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(file_col, sex_col):
            raise InputError(f"--sex-csv {path}, row {row_no}: too few columns")
        male, err = parse_sex(row[sex_col], header[sex_col] == "male")
        if err:
            raise InputError(f"--sex-csv {path}, row {row_no}, field {rows[0][sex_col]!r}: {err}")
        name = row[file_col].strip()
        for key in {name, os.path.basename(name), Path(name).stem}:
            table[key] = male
    return table


def sex_for_files(files: list[str], sex: str | None, sex_csv: str | None) -> list[bool]:
    """The sex of every file, from ``--sex`` or ``--sex-csv``; an error lists files without one."""
    if sex is not None:
        return [sex.upper() == "M"] * len(files)
    table = read_sex_csv(sex_csv)
    males, missing = [], []
    for f in files:
        key = next((k for k in (f, os.path.basename(f), Path(f).stem) if k in table), None)
        if key is None:
            missing.append(f)
        males.append(table.get(key, False))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(
            f"--sex-csv {sex_csv}: no sex for {len(missing)} input file(s): "
            f"{', '.join(missing[:5])}{more}"
        )
    return males


def output_names(files: list[str]) -> list[str]:
    """A unique PNG name per input: its stem, or its path with separators replaced on clashes."""
    stems = [Path(f).stem for f in files]
    clashes = {s for s in stems if stems.count(s) > 1}
    return [
        (str(Path(f).with_suffix("")).strip("/").replace(os.sep, "__") if s in clashes else s)
        + ".png"
        for f, s in zip(files, stems)
    ]


def write_tables(out_dir: Path, records: list[dict], meta: dict) -> None:
    """``predictions.csv`` (lists joined by ';') and ``predictions.json`` (which alone carries
    ALA-Net's per-ROI boxes and scores), both atomically."""
    from boneage_d2.utils.io import atomic_open, atomic_write_json

    with atomic_open(out_dir / "predictions.csv", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for rec in records:
            row = {k: rec.get(k, "") for k in CSV_COLUMNS}
            for k, v in row.items():
                if isinstance(v, list):
                    row[k] = ";".join("" if x is None else str(x) for x in v)
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    atomic_write_json(out_dir / "predictions.json", {**meta, "predictions": records}, indent=1)


def draw_outputs(inp: dict, output: dict, name: str, out_dir: Path, args) -> None:
    """The overlay and attention PNGs of one prediction, as requested."""
    import cv2

    from boneage_d2.data.image_io import read_radiograph
    from boneage_d2.modeling.attention_vis import draw_attention_maps
    from boneage_d2.visualize import draw_prediction

    gray = read_radiograph(inp["file_name"])
    if args.overlays:
        rgb = draw_prediction(gray, output, inp["male"])
        cv2.imwrite(str(out_dir / "overlays" / name), rgb[:, :, ::-1])
    if args.attention and output.get("attention_maps"):
        inst = output.get("instances")
        mask = None
        if inst is not None and len(inst) and "no_hand_found" not in output.get("flags", []):
            mask = inst.pred_masks[int(inst.scores.argmax())].cpu().numpy()
        title = f"{float(output['boneage']):.0f} mo, {'M' if inp['male'] else 'F'}"
        row = draw_attention_maps(
            gray, output["attention_maps"], output["attention_box"], mask, title=title
        )
        cv2.imwrite(str(out_dir / "attention" / name), row)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, help="the config the model was trained with")
    p.add_argument("--weights", help="checkpoint (.pth); default: MODEL.WEIGHTS of the config")
    p.add_argument("--input", nargs="+", required=True, help="files, folders or glob patterns")
    sex = p.add_mutually_exclusive_group(required=True)
    sex.add_argument("--sex", choices=("M", "F", "m", "f"), help="the sex of every image")
    sex.add_argument("--sex-csv", help="CSV with a file column and a sex (M/F) or male column")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--overlays", action="store_true", help="write overlays/<name>.png")
    p.add_argument("--attention", action="store_true", help="write attention/<name>.png (Model A)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=2, help="image-reading processes")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.num_workers < 0:
        p.error("--batch-size must be >= 1 and --num-workers >= 0")
    try:
        files = collect_inputs(args.input)
        males = sex_for_files(files, args.sex, args.sex_csv)
    except InputError as e:
        p.error(str(e))

    from tqdm import tqdm

    import boneage_d2  # noqa: F401  (registers the architectures)
    from boneage_d2.engine import ConfigError, load_config, validate_config
    from boneage_d2.engine.predictor import BoneAgePredictor, prediction_record

    try:
        cfg = load_config(args.config_file, args.opts)
        if args.weights:
            cfg.MODEL.WEIGHTS = args.weights
        cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), ()  # prediction reads no registered data
        validate_config(cfg, training=False)
    except ConfigError as e:
        p.error(str(e))
    if not cfg.MODEL.WEIGHTS:
        p.error("no weights: pass --weights (a model_final.pth from train_net.py)")
    cfg.freeze()

    out_dir = Path(args.output_dir)
    for sub, wanted in (("overlays", args.overlays), ("attention", args.attention)):
        if wanted:
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictor = BoneAgePredictor(cfg)
    names = output_names(files)
    records = []
    stream = predictor.predict_files(
        files, males, batch_size=args.batch_size, num_workers=args.num_workers
    )
    for name, (inp, output) in zip(names, stream):
        records.append(prediction_record(inp, output))
        if output is not None and (args.overlays or args.attention):
            draw_outputs(inp, output, name, out_dir, args)
    meta = {
        "config_file": args.config_file,
        "weights": cfg.MODEL.WEIGHTS,
        "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
    }
    write_tables(out_dir, records, meta)
    bad = sum(1 for r in records if r["error"])
    tqdm.write(
        f"wrote predictions for {len(records)} image(s) to {out_dir / 'predictions.csv'}"
        + (f" ({bad} unreadable: see the 'error' column)" if bad else "")
    )
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
