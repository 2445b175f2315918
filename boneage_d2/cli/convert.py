"""``boneage-convert``: convert RSNA (or phantom) raw splits into the COCO json of docs/data.md
(``python tools/convert_rsna.py`` runs the same). Torch-free.

One split::

    boneage-convert --labels "Validation Dataset.csv" \\
        --images boneage-validation-dataset --keypoints RSNA_Anatomical_ROIs_Validation.json \\
        --output datasets/rsna/val.json [--masks DIR | --derive-masks] [--roi-size 64] \\
        [--rois DIR] [--strict] [--workers N]

Every split found in a raw layout (train, val, test; see docs/data.md)::

    boneage-convert --rsna-root /data/rsna --output-dir datasets/rsna

writes ``<output-dir>/{train,val,test}.json`` and, beside each, ``<split>.skipped.csv`` listing
every skipped row with file, row, field and reason. The test split uses ``Bone age ground
truth.xlsx`` (or its CSV re-save) when present, else ``boneage-test-dataset.csv`` (ages null).
Masks come from ``<root>/masks`` when that folder exists, unless ``--derive-masks`` is given.
``--rois DIR`` (either form) adds hand-drawn ROI boxes, one Pascal VOC ``<id>.xml`` per film; they
replace a film's keypoint-derived boxes (docs/data.md, "Hand-drawn ROI boxes").

Exit status: 0 on success, 1 with a one-line ``error: ...`` on a strict-mode failure, a
missing input, an output that cannot be written, or a split that gives no image (no
traceback), 2 on a usage error. With ``--rsna-root``, a split whose label file has no data rows
(``make_phantom --num-test 0``) is written empty with a note instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..io.image_header import DEFAULT_MAX_PIXELS
from ..utils.argtypes import int_at_least, number_above

if TYPE_CHECKING:
    from ..convert import ConversionReport

__all__ = ["build_parser", "cli", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``convert_rsna`` (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="convert_rsna",
        description="Convert RSNA bone-age labels, PNGs, hand keypoints and masks to COCO json.",
    )
    one = p.add_argument_group("one split")
    one.add_argument("--labels", help="label file (.csv or .xlsx) of the split")
    one.add_argument("--images", help="folder of <id>.png radiographs")
    one.add_argument("--keypoints", help="hand keypoint json (BoNet 17-point or WholeBody 21)")
    one.add_argument("--output", help="output json (the report goes to <stem>.skipped.csv)")
    one.add_argument("--split", help="split name stored in the json (default: output stem)")
    root = p.add_argument_group("every split of a raw layout")
    root.add_argument("--rsna-root", help="folder in the raw layout of docs/data.md")
    root.add_argument("--output-dir", help="where <split>.json files are written")
    masks = p.add_mutually_exclusive_group()
    masks.add_argument("--masks", help="folder of <id>_mask.png hand masks (hand where > 127)")
    masks.add_argument(
        "--derive-masks",
        action="store_true",
        help="derive hand masks from the pixels (histogram normalisation + Canny, paper A)",
    )
    p.add_argument(
        "--roi-size",
        type=number_above(0, inclusive=False),
        default=64.0,
        help="ROI box side in pixels at the reference long side (default 64)",
    )
    p.add_argument(
        "--roi-reference",
        type=number_above(0, inclusive=False),
        default=512,
        help="reference long side for --roi-size (default 512)",
    )
    p.add_argument(
        "--rois",
        help="folder of <id>.xml hand-drawn ROI boxes (Pascal VOC; DIP/PIP/MCP/Radius/Ulna/Wrist)",
    )
    p.add_argument(
        "--max-pixels",
        type=int_at_least(1, "a pixel count"),
        default=DEFAULT_MAX_PIXELS,
        help="skip (report) an image whose header declares more pixels "
        f"(default {DEFAULT_MAX_PIXELS:,})",
    )
    p.add_argument("--strict", action="store_true", help="fail on the first bad row")
    p.add_argument(
        "--workers",
        type=int_at_least(1, "a worker count"),
        default=1,
        help="processes for per-image work",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _check_input(path: str | os.PathLike, what: str, folder: bool = False) -> None:
    """Raise an ``OSError`` naming ``path`` unless it is an existing file (folder)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: {what} not found")
    if folder and not p.is_dir():
        raise NotADirectoryError(f"{path}: {what} is a file")
    if not folder and p.is_dir():
        raise IsADirectoryError(f"{path}: {what} is a folder")


def _check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and write a probe file in it; raise ``OSError`` naming the
    output (``what``) when either fails, before any work is done."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(f"{what}: cannot write into {folder}: {existing} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OSError(f"{what}: folder {folder} is not writable ({e.strerror or e})") from None


def _root_jobs(args: argparse.Namespace) -> list[dict]:
    """One ``convert_split`` call per split found under ``--rsna-root``; masks come from
    ``<root>/masks`` when that folder exists and neither --masks nor --derive-masks is given."""
    from ..convert import find_raw_splits

    root = Path(args.rsna_root)
    _check_input(root, "RSNA root folder", folder=True)
    if args.rois is not None:
        _check_input(args.rois, "ROI folder", folder=True)
    splits = find_raw_splits(root)
    if not splits:
        raise FileNotFoundError(
            f"{root}: no split found (expected e.g. boneage-training-dataset.csv, "
            "'Validation Dataset.csv', boneage-test-dataset.csv)"
        )
    mask_dir = args.masks
    if mask_dir is None and not args.derive_masks and (root / "masks").is_dir():
        mask_dir = os.fspath(root / "masks")
    jobs = []
    for s in splits:
        if not s.images.is_dir():
            raise FileNotFoundError(f"{s.images}: image folder of split '{s.name}' not found")
        jobs.append(
            {
                "labels": s.labels,
                "image_dir": s.images,
                "output_json": Path(args.output_dir) / f"{s.name}.json",
                "allow_empty": True,
                "keypoints": s.keypoints,
                "mask_dir": mask_dir,
                "split_name": s.name,
                "require_age": s.require_age,
                "rois": args.rois,
            }
        )
    _check_writable(Path(args.output_dir), f"--output-dir {args.output_dir}")
    return jobs


def _single_split_job(args: argparse.Namespace) -> dict:
    """The ``convert_split`` call of --labels/--images/--output; checks the inputs exist and
    the output folder is writable."""
    for path, what in ((args.labels, "label file"), (args.keypoints, "keypoint file")):
        if path is not None:
            _check_input(path, what)
    folders = (args.images, "image folder"), (args.masks, "mask folder"), (args.rois, "ROI folder")
    for path, what in folders:
        if path is not None:
            _check_input(path, what, folder=True)
    output = Path(args.output)
    if output.is_dir():
        raise IsADirectoryError(f"--output {args.output} is a folder; give a .json file path")
    _check_writable(Path(os.path.abspath(output)).parent, f"--output {args.output}")
    return {
        "labels": args.labels,
        "image_dir": args.images,
        "output_json": args.output,
        "keypoints": args.keypoints,
        "mask_dir": args.masks,
        "split_name": args.split,
        "rois": args.rois,
        "allow_empty": False,
    }


def _jobs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[dict]:
    """The conversions to run, as keyword arguments of ``convert_split`` (plus
    ``allow_empty``); usage errors exit through ``parser``."""
    single = [args.labels, args.images, args.output, args.keypoints, args.split]
    if args.rsna_root:
        if any(x is not None for x in single):
            parser.error("--rsna-root cannot be combined with --labels/--images/--output/...")
        if not args.output_dir:
            parser.error("--rsna-root needs --output-dir")
        return _root_jobs(args)
    if args.output_dir:
        parser.error("--output-dir goes with --rsna-root; use --output for one split")
    missing = [n for n, v in (("--labels", args.labels), ("--images", args.images)) if not v]
    if not args.output:
        missing.append("--output")
    if missing:
        parser.error(f"missing {', '.join(missing)} (or use --rsna-root)")
    return [_single_split_job(args)]


def _no_images(
    report: ConversionReport, labels: str | os.PathLike, allow_empty: bool
) -> str | None:
    """The error for a conversion that gave no image (None when there are images, or when
    ``allow_empty`` and the label file simply has no data rows)."""
    if report.num_images > 0:
        return None
    name = Path(labels).name
    if report.num_label_rows == 0:
        if allow_empty:
            print(f"  note: {name} has no data rows; {report.output_json} holds no images")
            return None
        return f"{name}: no data rows under the header; nothing to convert"
    return (
        f"{name}: none of its {report.num_label_rows} label rows gave an image "
        f"(every row skipped; reasons in {report.report_path})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the converter; returns the exit status (0 ok, 1 bad input, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..convert import RSNAFormatError, convert_split

    try:
        jobs = _jobs(args, parser)
        for job in jobs:
            allow_empty = job.pop("allow_empty")
            if len(jobs) > 1:
                print(f"{job['split_name']}: labels from '{Path(job['labels']).name}'", flush=True)
            report = convert_split(
                **job,
                derive_masks=args.derive_masks,
                roi_size_px=args.roi_size,
                roi_reference_long_side=args.roi_reference,
                max_pixels=args.max_pixels,
                strict=args.strict,
                workers=args.workers,
                progress=not args.quiet,
            )
            print(report.summary())
            failure = _no_images(report, job["labels"], allow_empty)
            if failure:
                Path(report.output_json).unlink()  # an empty dataset is no result
                raise RSNAFormatError(failure)
            print(f"  wrote {report.output_json}; report: {report.report_path}", flush=True)
    except (RSNAFormatError, OSError) as e:  # OSError: missing input, unwritable output
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
