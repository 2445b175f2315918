"""Reading a finished run's folder (the demo report and the ablation table use it)."""

import json

from boneage_d2.utils.run_logs import final_iters, final_metrics


def _write(run_dir, entries):
    (run_dir / "metrics.json").write_text("\n".join(json.dumps(e) for e in entries))


def test_final_iters_counts_the_latest_run_in_a_reused_output_dir(tmp_path):
    """Detectron2 appends to metrics.json: a folder reused for a shorter run still holds the
    earlier run's lines, and the report must name the iterations of the run it shows."""
    earlier = [{"iteration": i, "total_loss": 1.0} for i in (19, 99)] + [
        {"iteration": 99, "boneage/MAE": 30.0}
    ]
    latest = [{"iteration": i, "total_loss": 0.5} for i in (19, 79)] + [
        {"iteration": 79, "boneage/MAE": 20.0}
    ]
    _write(tmp_path, earlier + latest)
    assert final_iters(tmp_path) == 80
    assert final_iters(tmp_path / "missing") == 0
    assert final_metrics(tmp_path)["boneage/MAE"] == 20.0


def test_final_metrics_names_roi_ap_as_roi(tmp_path):
    """A run that evaluated the ROI view reports roi/AP, never bbox/AP (read as hand AP); a run
    without an age task (vanilla RPN) still has its detection-only evaluation."""
    _write(tmp_path, [{"iteration": 9, "total_loss": 1.0}, {"iteration": 9, "bbox/AP50": 80.0}])
    (tmp_path / "config.yaml").write_text("BONEAGE:\n  EVAL:\n    DETECTION_VIEW: roi\n")
    assert final_metrics(tmp_path) == {"iteration": 9, "roi/AP50": 80.0}
    (tmp_path / "config.yaml").write_text("BONEAGE:\n  EVAL:\n    DETECTION_VIEW: hand\n")
    assert final_metrics(tmp_path)["bbox/AP50"] == 80.0
