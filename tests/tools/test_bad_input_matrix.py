"""Bad input to the command-line tools, one case each, checked on the message the user sees.

``convert_rsna`` (cases not already in test_rsna_convert.py), ``make_phantom`` and
``train_net``: every case ends with an exit status and a one-line ``error: ...`` naming what was
wrong (file, row, field, option or config key), never a traceback.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from detectron2.data import DatasetCatalog

from boneage_d2.data import register_boneage_split
from tests.cli import load_tool
from tests.convert.test_rsna_convert import (
    LABEL_ROWS,
    SIZES,
    bonet_json,
    default_entries,
    make_raw_root,
    write_labels,
    write_png,
)
from tests.fixtures import CONFIGS, write_tiny_dataset

train_net = load_tool("train_net")
convert_main = load_tool("convert_rsna").main
phantom_main = load_tool("make_phantom").main

CONFIG = str(CONFIGS / "Global/R18-phantom-demo.yaml")


def run_cli(
    main: Callable[[list[str]], int | None], argv: list[str], capsys
) -> tuple[int, str, str]:
    """Exit status, stderr and stdout of a tool's ``main``/``cli`` (usage errors exit through
    argparse); a traceback on stderr fails the test."""
    try:
        rc = main(argv) or 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, err, out


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder where no file can be created: read-only for a user; /proc for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    if not Path("/proc/self").is_dir():
        pytest.skip("running as root without /proc: no unwritable folder to test with")
    return Path("/proc")


# --- convert_rsna --------------------------------------------------------------------------------


def split_files(root: Path) -> dict[str, Path]:
    """A clean 3-image split (the layout of test_rsna_convert.py's ``split`` fixture)."""
    labels = write_labels(root / "labels.csv", ["id", "boneage", "male"], LABEL_ROWS)
    for rid, (w, h) in SIZES.items():
        write_png(root / "imgs" / f"{rid}.png", w, h)
    kp = bonet_json(root / "kp.json", default_entries())
    return {"labels": labels, "images": root / "imgs", "keypoints": kp, "out": root / "o.json"}


def one_split(s: dict[str, Path], *extra: str, **replace: str | Path) -> list[str]:
    args = {**s, **replace}
    argv = ["--labels", str(args["labels"]), "--images", str(args["images"]), "--quiet"]
    argv += ["--output", str(args["out"]), *extra]
    if args.get("keypoints"):
        argv += ["--keypoints", str(args["keypoints"])]
    return argv


def _kp_json(s: dict[str, Path], data: object, *extra: str) -> list[str]:
    s["keypoints"].write_text(json.dumps(data))
    return one_split(s, *extra)


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _raw_root_without_images(t: Path, s) -> list[str]:
    make_raw_root(t / "raw", with_xlsx=False)
    for png in (t / "raw" / "boneage-training-dataset").iterdir():
        png.unlink()
    (t / "raw" / "boneage-training-dataset").rmdir()
    return ["--rsna-root", str(t / "raw"), "--output-dir", str(t / "out"), "--quiet"]


def _raw_root_unwritable_output(t: Path, s) -> list[str]:
    make_raw_root(t / "raw", with_xlsx=False)
    out = unwritable_folder(t) / "converted"
    return ["--rsna-root", str(t / "raw"), "--output-dir", str(out), "--quiet"]


# name: (argv(tmp_path, split files) -> argv, exit status, patterns the stderr must contain)
CONVERT_CASES: dict[str, tuple[Callable, int, list[str]]] = {
    "rsna_root_missing": (
        lambda t, s: ["--rsna-root", str(t / "absent"), "--output-dir", str(t / "o")],
        1, [r"^error: .*absent: RSNA root folder not found$"],
    ),
    "rsna_root_is_a_file": (
        lambda t, s: ["--rsna-root", str(s["labels"]), "--output-dir", str(t / "o")],
        1, [r"labels\.csv: RSNA root folder is a file"],
    ),
    "rsna_root_without_any_split": (
        lambda t, s: ["--rsna-root", str(s["images"]), "--output-dir", str(t / "o")],
        1, [r"imgs: no split found", "boneage-training-dataset.csv"],
    ),
    "rsna_root_split_without_image_folder": (
        _raw_root_without_images,
        1, [r"boneage-training-dataset: image folder of split 'train' not found"],
    ),
    "output_dir_not_writable": (
        _raw_root_unwritable_output,
        1, [r"^error: --output-dir .*converted: .*(not writable|is a file)"],
    ),
    "output_folder_not_writable": (
        lambda t, s: one_split(s, out=unwritable_folder(t) / "o.json"),
        1, [r"^error: --output .*o\.json: folder .* is not writable \(.+\)$"],
    ),
    "output_under_a_file": (
        lambda t, s: one_split(s, out=s["labels"] / "o.json"),
        1, [r"^error: --output .*labels\.csv/o\.json: cannot write into .*labels\.csv is a file"],
    ),
    "output_is_a_folder": (
        lambda t, s: one_split(s, out=s["images"]),
        1, [r"^error: --output .*imgs is a folder; give a \.json file path$"],
    ),
    "labels_is_a_folder": (
        lambda t, s: one_split(s, labels=s["images"]),
        1, [r"^error: .*imgs: label file is a folder$"],
    ),
    "images_is_a_file": (
        lambda t, s: one_split(s, images=s["labels"]),
        1, [r"^error: .*labels\.csv: image folder is a file$"],
    ),
    "empty_csv": (
        lambda t, s: one_split(s, labels=_write(t / "empty.csv", b"")),
        1, [r"^error: empty\.csv row 0 \(header\) field 'id': no image id column",
            "found columns: none"],
    ),
    "csv_with_only_a_header": (
        lambda t, s: one_split(s, labels=_write(t / "header.csv", "id,boneage,male\n")),
        1, [r"^error: header\.csv: no data rows under the header; nothing to convert$"],
    ),
    "every_row_skipped": (
        lambda t, s: one_split(s, images=(t / "empty_dir").mkdir() or t / "empty_dir"),
        1, [r"^error: labels\.csv: none of its 3 label rows gave an image", r"o\.skipped\.csv"],
    ),
    "binary_label_file": (
        lambda t, s: one_split(s, labels=_write(t / "bin.csv", bytes(range(256)) * 2)),
        1, [r"^error: bin\.csv row 0 \(header\) field 'id': no image id column"],
    ),
    "xls_label_file": (
        lambda t, s: one_split(s, labels=_write(t / "old.xls", b"\xd0\xcf\x11\xe0junk")),
        1, [r"^error: old\.xls row 0 \(header\) field '-': old \.xls workbooks are not supported"],
    ),
    "corrupt_xlsx_label_file": (
        lambda t, s: one_split(s, labels=_write(t / "bad.xlsx", b"PK\x03\x04 not a zip")),
        1, [r"^error: bad\.xlsx row 0 \(header\) field '-': unreadable label file"],
    ),
    "keypoint_json_not_json": (
        lambda t, s: one_split(s, keypoints=_write(t / "kp_text.json", "{not json")),
        1, [r"^error: kp_text\.json row 0 \(header\) field '-': not valid json \(.*line 1"],
    ),
    "keypoint_json_empty_file": (
        lambda t, s: one_split(s, keypoints=_write(t / "kp_empty.json", b"")),
        1, [r"^error: kp_empty\.json row 0 \(header\) field '-': not valid json"],
    ),
    "keypoint_json_too_deep": (
        lambda t, s: one_split(s, keypoints=_write(t / "kp_deep.json", "[" * 100_000)),
        1, [r"^error: kp_deep\.json row 0 \(header\) field '-': not valid json"],
    ),
    "keypoint_json_is_a_list": (
        lambda t, s: _kp_json(s, [{"annotations": []}]),
        1, [r"^error: kp\.json row 0 \(header\) field 'annotations': no 'annotations' list$"],
    ),
    "keypoint_json_annotations_not_a_list": (
        lambda t, s: _kp_json(s, {"images": [], "annotations": {"1": []}}),
        1, [r"^error: kp\.json row 0 \(header\) field 'annotations': no 'annotations' list$"],
    ),
    "keypoint_json_without_images": (
        lambda t, s: _kp_json(s, {"annotations": []}),
        1, [r"^error: kp\.json row 0 \(header\) field 'images': no 'images' list$"],
    ),
    "keypoint_json_annotation_not_an_object_strict": (
        lambda t, s: _kp_json(s, {"images": [], "annotations": [[1, 2, 2]]}, "--strict"),
        1, [r"^error: kp\.json row 1 field '-': annotation is not an object$"],
    ),
    "keypoint_json_keypoints_not_numbers_strict": (
        lambda t, s: _kp_json(
            s,
            {
                "images": [{"id": 1, "file_name": "101.png"}],
                "annotations": [{"image_id": 1, "keypoints": "x1,y1,v1"}],
            },
            "--strict",
        ),
        1, [r"^error: kp\.json row 1 field 'keypoints': keypoints are not a list of finite"],
    ),
    "workers_zero": (
        lambda t, s: one_split(s, "--workers", "0"),
        2, [r"argument --workers: expected a worker count >= 1, got 0"],
    ),
    "roi_size_not_positive": (
        lambda t, s: one_split(s, "--roi-size", "-4"),
        2, [r"argument --roi-size: expected a number > 0, got -4"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CONVERT_CASES))
def test_convert_rsna_bad_input(tmp_path, capsys, case):
    make_argv, status, patterns = CONVERT_CASES[case]
    rc, err, _ = run_cli(convert_main, make_argv(tmp_path, split_files(tmp_path)), capsys)
    assert rc == status, err
    last = err.strip().splitlines()[-1]
    for pattern in patterns:
        assert re.search(pattern, last), (pattern, err)
    if status == 1:
        assert len(err.strip().splitlines()) == 1  # one line, no traceback
        assert not (tmp_path / "o.json").exists()


def test_convert_rsna_categories_of_the_wrong_type_are_ignored(tmp_path, capsys):
    """Found by fuzzing: a ``categories`` that is not a list crashed the keypoint reader."""
    s = split_files(tmp_path)
    data = json.loads(s["keypoints"].read_text())
    s["keypoints"].write_text(json.dumps({**data, "categories": 5}))
    rc, _, _ = run_cli(convert_main, one_split(s), capsys)
    images = json.loads(s["out"].read_text())["images"]
    assert rc == 0 and len(images) == 3 and all(im["has_keypoints"] for im in images)


def test_convert_rsna_root_with_an_empty_split_writes_it_with_a_note(tmp_path, capsys):
    """``make_phantom --num-test 0`` writes header-only test files: not an error with
    --rsna-root (the demo pipeline allows it), but said."""
    make_raw_root(tmp_path / "raw", with_xlsx=False)
    write_labels(tmp_path / "raw" / "boneage-test-dataset.csv", ["Case ID", "Sex"], [])
    argv = ["--rsna-root", str(tmp_path / "raw"), "--output-dir", str(tmp_path / "o"), "--quiet"]
    rc = convert_main(argv)
    out = capsys.readouterr().out
    assert rc == 0
    assert "note: boneage-test-dataset.csv has no data rows" in out
    assert json.loads((tmp_path / "o" / "test.json").read_text())["images"] == []


# --- make_phantom --------------------------------------------------------------------------------

PHANTOM_BASE = {"--num-train": "1", "--num-val": "0", "--num-test": "0", "--seed": "0"}
PHANTOM_FAST = ["--image-long-side", "64", "--no-distractors", "--no-progress"]


def phantom_argv(out: Path | str, **changes: str) -> list[str]:
    args = {**PHANTOM_BASE, **{f"--{k.replace('_', '-')}": v for k, v in changes.items()}}
    return ["--output-dir", str(out), *[x for kv in args.items() for x in kv], *PHANTOM_FAST]


PHANTOM_CASES: dict[str, tuple[Callable, list[str]]] = {
    "negative_count": (
        lambda t: phantom_argv(t / "p", num_val="-1"),
        [r"argument --num-val: expected a count >= 0, got -1$"],
    ),
    "count_not_a_number": (
        lambda t: phantom_argv(t / "p", num_test="ten"),
        [r"argument --num-test: expected a whole number, got 'ten'$"],
    ),
    "all_counts_zero": (
        lambda t: phantom_argv(t / "p", num_train="0"),
        [r"--num-train, --num-val and --num-test are all 0: nothing to generate$"],
    ),
    "seed_not_a_number": (
        lambda t: phantom_argv(t / "p", seed="x"),
        [r"argument --seed: expected a whole number, got 'x'$"],
    ),
    "seed_not_whole": (
        lambda t: phantom_argv(t / "p", seed="1.5"),
        [r"argument --seed: expected a whole number, got '1.5'$"],
    ),
    "negative_seed": (
        lambda t: phantom_argv(t / "p", seed="-1"),
        [r"argument --seed: expected a whole number >= 0, got -1$"],
    ),
    "output_dir_is_a_file": (
        lambda t: phantom_argv(_write(t / "afile", "x")),
        [r"--output-dir '.*afile' is a file, not a folder$"],
    ),
    "output_dir_under_a_file": (
        lambda t: phantom_argv(_write(t / "afile", "x") / "sub"),
        [r"^make_phantom: error: cannot write to --output-dir '.*afile/sub': .*Not a directory"],
    ),
    "output_dir_not_writable": (
        lambda t: phantom_argv(unwritable_folder(t) / "phantom"),
        [r"^make_phantom: error: cannot write to --output-dir '.*phantom': \[Errno \d+\]"],
    ),
    "workers_not_a_number": (
        lambda t: phantom_argv(t / "p", workers="many"),
        [r"argument --workers: expected a whole number, got 'many'$"],
    ),
    "workers_negative": (
        lambda t: phantom_argv(t / "p", workers="-2"),
        [r"argument --workers: expected a whole number >= 1, got -2$"],
    ),
    "workers_zero": (
        lambda t: phantom_argv(t / "p", workers="0"),
        [r"argument --workers: expected a whole number >= 1, got 0$"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(PHANTOM_CASES))
def test_make_phantom_bad_input(tmp_path, capsys, case):
    make_argv, patterns = PHANTOM_CASES[case]
    rc, err, _ = run_cli(phantom_main, make_argv(tmp_path), capsys)
    assert rc == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("make_phantom: error: ")
    for pattern in patterns:
        assert re.search(pattern, last), (pattern, err)


def test_make_phantom_never_starts_more_workers_than_images(tmp_path, capsys):
    """Found by the matrix: --workers 100000 asked the pool for 100000 processes."""
    rc, _, out = run_cli(phantom_main, phantom_argv(tmp_path / "p", workers="100000"), capsys)
    assert rc == 0 and "img/s, 1 workers)" in out


# --- train_net -----------------------------------------------------------------------------------


def train_argv(out: Path, *opts: str, config: str = CONFIG) -> list[str]:
    base = ["SOLVER.MAX_ITER", "1", "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(out)]
    return ["--config-file", config, *base, *opts]


def _registered(name: str, json_file: Path) -> str:
    if name not in DatasetCatalog.list():
        register_boneage_split(name, json_file)
    return name


def _typo_yaml(t: Path) -> str:
    path = t / "typo.yaml"
    path.write_text(f'_BASE_: "{CONFIG}"\nBONEAGE:\n  ORDINAL:\n    NUM_RANK: 10\n')
    return str(path)


def _malformed_json(t: Path) -> Path:
    path = write_tiny_dataset(t / "malformed", num_images=2)
    path.write_text(path.read_text()[:-20])
    return path


TRAIN_CASES: dict[str, tuple[Callable, list[str]]] = {
    "config_file_missing": (
        lambda t: train_argv(t, config=str(t / "nope.yaml")),
        [r"^error: config file not found: .*nope\.yaml$"],
    ),
    "config_key_typo_in_yaml": (
        lambda t: train_argv(t, config=_typo_yaml(t)),
        [r"typo\.yaml: unknown config key BONEAGE\.ORDINAL\.NUM_RANK;",
         r"did you mean BONEAGE\.ORDINAL\.NUM_RANKS"],
    ),
    "config_key_typo_on_command_line": (
        lambda t: train_argv(t, "SOLVER.BASE_LRR", "0.1"),
        [r"^error: command line: unknown config key SOLVER\.BASE_LRR;",
         r"did you mean SOLVER\.BASE_LR"],
    ),
    "unregistered_dataset": (
        lambda t: train_argv(t, "DATASETS.TRAIN", "('tiny_boneage_trian',)"),
        [r"^error: dataset 'tiny_boneage_trian' \(DATASETS\.TRAIN/TEST\) is not registered",
         "register_boneage_split"],
    ),
    "weights_file_missing": (
        lambda t: train_argv(t, "MODEL.WEIGHTS", str(t / "model.pth")),
        [r"^error: MODEL\.WEIGHTS='.*model\.pth': file not found$"],
    ),
    "dataset_json_missing": (
        lambda t: train_argv(
            t, "DATASETS.TRAIN", f"('{_registered('mtx_absent_json', t / 'absent.json')}',)",
            "DATASETS.TEST", "()",
        ),
        [r"^error: dataset 'mtx_absent_json'.*absent\.json.*not found"],
    ),
    "dataset_json_malformed": (
        lambda t: train_argv(
            t, "DATASETS.TRAIN", f"('{_registered('mtx_malformed_json', _malformed_json(t))}',)",
            "DATASETS.TEST", "()",
        ),
        [r"^error: dataset 'mtx_malformed_json'.*tiny\.json.*(not valid json|line \d+)"],
    ),
    "config_value_of_the_wrong_type": (
        lambda t: train_argv(t, "SOLVER.MAX_ITER", "ten"),
        [r"^error: command line: .*SOLVER\.MAX_ITER"],
    ),
    "on_bad_image_unknown_value": (
        lambda t: train_argv(t, "BONEAGE.DATA.ON_BAD_IMAGE", "ignore"),
        [r"^error: BONEAGE\.DATA\.ON_BAD_IMAGE='ignore'; expected one of"],
    ),
}  # fmt: skip


def _check_train_case(tmp_path, capsys, make_argv, patterns) -> None:
    rc, err, _ = run_cli(train_net.cli, make_argv(tmp_path), capsys)
    assert rc == 2, err
    last = err.strip().splitlines()[-1]
    for pattern in patterns:
        assert re.search(pattern, last), (pattern, err)


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_net_bad_input(tmp_path, capsys, case):
    _check_train_case(tmp_path, capsys, *TRAIN_CASES[case])
