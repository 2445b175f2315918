"""Measure the input checks' flag rates: clean films and synthetic bad inputs made from them.

    python tools/measure_input_checks.py --phantom 200 \\
        --real-dir /data/rsna_real/images --bad-per-source 100 --output-dir outputs/input_checks

Sources: ``--phantom N`` generated phantom films (with their distractors: tags, rulers, a
second partial hand, borders, noise) and/or ``--real-dir`` (every PNG/JPEG/DICOM below it).
For each source it reports the share of clean films flagged (false flags) and, for each bad
input of ``boneage_d2.checks.perturb.BAD_INPUTS`` made from the first ``--bad-per-source``
films, the share that misses its flag. Writes ``input_checks.md``, ``input_checks.json`` and
``input_checks.jpg`` (each source's first film and its bad inputs, with the flags raised).
Trailing ``KEY VALUE`` pairs override ``BONEAGE.CHECKS`` thresholds (``--config-file`` too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def example_sheet(first_films: dict, checks):
    """One row per source: its first film and each bad input made from it, captioned with the
    case and the flags raised (RGB)."""
    import cv2

    from boneage_d2.checks.perturb import BAD_INPUTS
    from boneage_d2.vis import contact_sheet

    cells = []
    for source, film in first_films.items():
        cases = {"clean": film, **{c: make(film) for c, (make, _) in BAD_INPUTS.items()}}
        for case, gray in cases.items():
            scale = 240 / max(gray.shape)  # long side 240 px: the captions' scale
            cell = cv2.cvtColor(cv2.resize(gray, None, fx=scale, fy=scale), cv2.COLOR_GRAY2RGB)
            lines = [f"{source}: {case}", *(checks.flags(gray) or ["no flag"])]
            for k, line in enumerate(lines):
                y = 14 + 14 * k
                cv2.putText(cell, line, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3)
                colour = (255, 255, 0) if k == 0 else (255, 80, 80)
                cv2.putText(cell, line, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
            cells.append(cell)
    return contact_sheet(cells, cols=len(BAD_INPUTS) + 1, cell_px=240)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--phantom", type=int, default=0, metavar="N", help="N phantom films")
    p.add_argument("--phantom-seed", type=int, default=0)
    p.add_argument("--real-dir", help="a folder of real films (searched recursively)")
    p.add_argument("--max-real", type=int, default=0, help="at most this many real films (0: all)")
    p.add_argument("--bad-per-source", type=int, default=50)
    p.add_argument("--config-file", help="a config whose BONEAGE.CHECKS to use")
    p.add_argument("--output-dir", required=True)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = p.parse_args(argv)
    if not args.phantom and not args.real_dir:
        p.error("give --phantom N and/or --real-dir")

    from detectron2.config import get_cfg

    from boneage_d2.checks import ImageChecks
    from boneage_d2.checks.rates import flag_rates, rates_markdown
    from boneage_d2.config import add_boneage_config
    from boneage_d2.engine.prediction_io import InputError, collect_inputs
    from boneage_d2.io.atomic import atomic_open, atomic_write_json
    from boneage_d2.io.radiograph import read_radiograph
    from boneage_d2.phantom import PhantomConfig, sample_phantom

    cfg = add_boneage_config(get_cfg())
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    checks = ImageChecks.from_config(cfg)

    films = {}
    if args.phantom:
        pcfg = PhantomConfig()
        films["phantom"] = (
            sample_phantom(pcfg, seed=args.phantom_seed, image_id=i).image
            for i in range(args.phantom)
        )
    if args.real_dir:
        try:
            files = collect_inputs([args.real_dir])
        except InputError as e:
            p.error(str(e))
        files = files[: args.max_real] if args.max_real else files
        films["real"] = (read_radiograph(f) for f in files)
    first: dict = {}

    def remember(source, stream):
        for gray in stream:
            first.setdefault(source, gray)
            yield gray

    films = {source: remember(source, stream) for source, stream in films.items()}
    rows = flag_rates(films, checks, bad_per_source=args.bad_per_source)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = rates_markdown(rows)
    with atomic_open(out / "input_checks.md") as f:
        f.write(table)
    atomic_write_json(out / "input_checks.json", {"thresholds": vars(checks), "rows": rows})
    if first:
        import cv2

        cv2.imwrite(str(out / "input_checks.jpg"), example_sheet(first, checks)[:, :, ::-1])
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
