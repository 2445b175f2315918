"""The demo report's summary of a training run."""

import json

from tests.cli import load_tool

final_iters = load_tool("demo").final_iters


def test_final_iters_counts_the_latest_run_in_a_reused_output_dir(tmp_path):
    """Detectron2 appends to metrics.json: a folder reused for a shorter run still holds the
    earlier run's lines, and the report must name the iterations of the run it shows."""
    earlier = [{"iteration": i, "total_loss": 1.0} for i in (19, 99)] + [
        {"iteration": 99, "boneage/MAE": 30.0}
    ]
    latest = [{"iteration": i, "total_loss": 0.5} for i in (19, 79)] + [
        {"iteration": 79, "boneage/MAE": 20.0}
    ]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(e) for e in earlier + latest))
    assert final_iters(tmp_path) == 80
    assert final_iters(tmp_path / "missing") == 0
