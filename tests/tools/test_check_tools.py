"""The checks' and trustworthiness tools from the command line: outputs and bad-input errors."""

import json
import re

import cv2
import pytest

from tests.cli import load_tool
from tests.fixtures import REPO

measure = load_tool("measure_input_checks")
stress = load_tool("stress_test")
calibrate = load_tool("calibrate_intervals")
ALANET = str(REPO / "configs/ALA-Net/R18-phantom-demo.yaml")


def test_measure_input_checks_writes_table_json_and_sheet(tmp_path):
    out = tmp_path / "ic"
    assert measure.main(["--phantom", "2", "--bad-per-source", "1", "--output-dir", str(out)]) == 0
    rows = json.loads((out / "input_checks.json").read_text())["rows"]
    assert {r["case"] for r in rows} >= {"clean", "inverted", "rotated_90"}
    assert "| phantom | clean | 2 |" in (out / "input_checks.md").read_text()
    assert cv2.imread(str(out / "input_checks.jpg")).shape[0] == 240  # one row: one source


def test_measure_input_checks_needs_a_source_and_a_real_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        measure.main(["--output-dir", str(tmp_path)])
    assert "give --phantom N and/or --real-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        measure.main(["--real-dir", str(tmp_path / "none"), "--output-dir", str(tmp_path)])
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("tool", [stress, calibrate])
def test_missing_weights_and_unknown_dataset_are_clear_errors(tool, tmp_path, capsys):
    argv = ["--config-file", ALANET, "--dataset", "no_such_split"]
    extra = ["--output-dir", str(tmp_path)] if tool is stress else []
    with pytest.raises(SystemExit):
        tool.main(argv + ["--weights", str(tmp_path / "none.pth"), *extra])
    assert "none.pth: file not found" in capsys.readouterr().err
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    with pytest.raises(SystemExit):
        tool.main(argv + ["--weights", str(weights), *extra])
    assert re.search(r"no_such_split.*not (a )?registered", capsys.readouterr().err)
