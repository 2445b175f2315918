"""tools/benchmark.py in --quick mode: every section measured, the json and table, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest

from boneage_d2.benchmark import MIN_REPEATS, time_interleaved
from tests.cli import load_tool
from tests.fixtures import write_tiny_dataset

benchmark = load_tool("benchmark")


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = benchmark.main(argv)
    return code, out.getvalue(), err.getvalue()


def _positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One full --quick run on the CPU (a phantom set generated in a temporary folder)."""
    path = tmp_path_factory.mktemp("bench") / "sub" / "bench.json"
    code, out, err = _run(["--quick", "--threads", "1", "--device", "cpu", "--output", str(path)])
    assert code == 0, err[-2000:]
    return json.loads(path.read_text()), out, err


def test_every_section_has_finite_positive_times_and_ratios(quick_run):
    results, _, _ = quick_run
    inference = results["inference"]
    assert {r["model"] for r in inference} == {c.name for c in benchmark.INFERENCE_CASES}
    assert {r["batch"] for r in inference} == {1, 2}
    for r in inference:
        assert "error" not in r, r
        assert all(_positive(r[k]) for k in ("model_s", "reference_s", "ratio", "paired_ratio"))
        assert r["passed"] == (r["ratio"] <= float(r["target"].split()[1].rstrip("x")))
        assert r["model_input"][0] == r["reference_input"][0] == r["batch"]
    assert results["backbones"] and not any("error" in r for r in results["backbones"])
    for r in results["training"]:
        assert "error" not in r, r
        assert all(_positive(r[k]) for k in ("s_per_iter", "iters_per_s", "images_per_s"))
    assert len(results["training"]) == len(benchmark.TRAINING_CONFIGS)
    for r in results["loader"]:
        assert _positive(r["images_per_s"]) and _positive(r["ratio"]), r
        assert r["ratio"] == pytest.approx(r["images_per_s"] / r["training_images_per_s"])
    convert = results["convert"]
    assert convert["rows"] == 40 and _positive(convert["seconds"]), convert


def test_json_describes_machine_and_table_shows_targets(quick_run):
    results, out, err = quick_run
    m = results["machine"]
    assert m["cpu_model"] and m["cpu_count"] >= 1 and m["torch_threads"] == 1
    assert m["torch"] and m["detectron2"] and m["gpu"] is None
    assert len(results["load_average_before"]) == 3
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["section", "case", "measured"]
    ratio_rows = [line for line in lines if "<= 1." in line or ">= 3.0x" in line]
    assert len(ratio_rows) == len(results["inference"]) + len(results["loader"])
    assert all(line.rstrip().endswith(("PASS", "MISS")) for line in ratio_rows)
    assert "inference: ALA-Net" in err and "loader: HandSeg-RAN" in err  # progress lines


def test_only_sections_with_datasets_root(tmp_path):
    coco = tmp_path / "phantom" / "coco"
    write_tiny_dataset(coco, num_images=4).rename(coco / "train.json")
    out = tmp_path / "b.json"
    argv = ["--quick", "--only", "loader,convert", "--convert-rows", "5", "--output", str(out)]
    code, _, err = _run([*argv, "--datasets-root", str(tmp_path), "--loader-batches", "2"])
    assert code == 0, err[-2000:]
    results = json.loads(out.read_text())
    assert "inference" not in results and "training" not in results
    assert results["convert"]["rows"] == 5
    for r in results["loader"]:  # no training measured: throughput only, no ratio
        assert _positive(r["images_per_s"]) and "ratio" not in r, r


def test_only_backbones_gives_lite_ratios_to_both_resnets(tmp_path):
    out = tmp_path / "b.json"
    argv = ["--quick", "--only", "backbones", "--threads", "1", "--device", "cpu"]
    code, table, err = _run([*argv, "--output", str(out)])
    assert code == 0, err[-2000:]
    results = json.loads(out.read_text())
    assert results["settings"]["sections"] == ["backbones"] and "inference" not in results
    rows = results["backbones"]
    assert {r["variant"] for r in rows} == {"lite0", "lite1", "lite2"}
    assert {(r["size"], r["batch"]) for r in rows} == {(128, 1), (128, 2)}
    for r in rows:
        assert "error" not in r, r
        assert all(_positive(r[k]) for k in ("model_s", "r18_s", "r50_s", "ratio_r18", "ratio_r50"))
        assert r["ratio_r50"] == pytest.approx(r["model_s"] / r["r50_s"])
    lines = [line for line in table.splitlines() if line.startswith("backbones")]
    assert len(lines) == len(rows)
    for variant in ("lite0", "lite1", "lite2"):
        assert any(f"EfficientNet-{variant} (cpu fp32, 128 px, batch 2)" in x for x in lines)
    assert all("x R18, " in line and line.rstrip().endswith("-") for line in lines)


def test_backbone_build_failure_is_an_error_row_per_lite(tmp_path, monkeypatch):
    from boneage_d2.benchmark import backbones

    def broken(variant: str, channels_last: bool, device: str):
        raise RuntimeError("no such variant")

    monkeypatch.setattr(backbones, "build_lite", broken)
    out = tmp_path / "b.json"
    code, table, _ = _run(["--quick", "--only", "backbones", "--output", str(out)])
    rows = json.loads(out.read_text())["backbones"]
    assert code == 1 and table.count("ERROR") == len(rows) == 2 * len(backbones.LITE_BACKBONES)
    assert all(r["error"] == "RuntimeError: no such variant" for r in rows)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "inference,speed"], "unknown section ['speed']"),
        (["--only", "trainig"], "unknown section ['trainig']"),
        (["--datasets-root", "{tmp}/missing"], "folder not found"),
        (["--datasets-root", "{tmp}"], "phantom/coco/train.json not found"),
        (["--output", "{tmp}/file.txt/b.json"], "cannot write there"),
        (["--output", "{tmp}"], "is a folder"),
        (["--threads", "0"], "expected a whole number >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, argv, message):
    (tmp_path / "file.txt").write_text("x")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--output" not in argv:
        argv += ["--output", str(tmp_path / "b.json")]
    code, out, err = _run(argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("benchmark: error: ") and message in err, err
    assert not (tmp_path / "b.json").exists()


def test_failed_measurement_is_reported_and_exit_1(tmp_path, monkeypatch):
    def broken(rows: int, workers: int, seed: int) -> dict:
        raise RuntimeError("disk full")

    monkeypatch.setattr(benchmark, "bench_convert", broken)
    out = tmp_path / "b.json"
    code, table, _ = _run(["--quick", "--only", "convert", "--output", str(out)])
    assert code == 1 and "RuntimeError: disk full" in table and table.count("ERROR") == 1
    assert json.loads(out.read_text())["convert"]["error"] == "RuntimeError: disk full"


def test_time_interleaved_alternates_order_and_respects_budget():
    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    times = time_interleaved(calls, warmup=1, repeats=4)
    assert order == ["a", "b"] + ["a", "b", "b", "a"] * 2
    assert [len(v) for v in times.values()] == [4, 4]
    times = time_interleaved(calls, warmup=0, repeats=50, budget_s=0.0)
    assert len(times["a"]) == MIN_REPEATS
