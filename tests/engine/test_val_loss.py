"""Validation loss during training (BONEAGE.EVAL.VAL_LOSS_PERIOD): in metrics.json beside the
training loss, computed without touching the training (weights, BatchNorm statistics, RNGs)."""

from __future__ import annotations

import json

import pytest
import torch
from detectron2.engine import default_argument_parser

from boneage_d2.engine import BoneAgeTrainer, ConfigError, load_config, validate_config
from boneage_d2.engine.val_loss import validation_losses
from tests.cli import load_tool
from tests.fixtures import CONFIGS

train_net = load_tool("train_net")


def _train(tiny_dataset: str, out, *opts: str):
    argv = ["--config-file", str(CONFIGS / "Global/R18-phantom-demo.yaml")]
    argv += [
        *("DATASETS.TRAIN", f"('{tiny_dataset}',)", "DATASETS.TEST", "()"),
        *("BONEAGE.INPUT.LONG_SIDE_TRAIN", "64", "BONEAGE.INPUT.LONG_SIDE_TEST", "64"),
        *("SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "21", "SOLVER.WARMUP_ITERS", "1"),
        *("SOLVER.CHECKPOINT_PERIOD", "100", "DATALOADER.NUM_WORKERS", "0", "SEED", "3"),
        *("OUTPUT_DIR", str(out), *opts),
    ]
    train_net.main(default_argument_parser().parse_args(argv))
    return torch.load(out / "model_final.pth", weights_only=False)["model"]


def test_metrics_json_holds_the_validation_loss_and_training_is_unchanged(tiny_dataset, tmp_path):
    period = ["BONEAGE.EVAL.VAL_LOSS_PERIOD", "20", "BONEAGE.EVAL.VAL_LOSS_DATASET", tiny_dataset]
    with_val = _train(tiny_dataset, tmp_path / "val", *period)
    lines = [json.loads(x) for x in (tmp_path / "val/metrics.json").read_text().splitlines()]
    val = {r["iteration"]: r for r in lines if "val/total_loss" in r}
    assert sorted(val) == [19, 20]  # every 20 iterations and after the last (of 21)
    assert val[20]["val/total_loss"] == pytest.approx(val[20]["val/loss_age"])
    assert val[20]["val/total_loss"] > 0
    assert all("total_loss" in r for r in val.values())  # the training loss, beside it
    # BatchNorm in eval mode, no gradients, RNGs restored: the same weights as without the hook.
    without = _train(tiny_dataset, tmp_path / "plain")
    assert with_val.keys() == without.keys()
    assert all(torch.equal(with_val[k], without[k]) for k in without)


def test_losses_of_alanet_keep_batchnorm_modes_and_rng(tiny_dataset):
    cfg = load_config(
        str(CONFIGS / "ALA-Net/R18-phantom-demo.yaml"),
        ["DATASETS.TEST", f"('{tiny_dataset}',)", "BONEAGE.INPUT.LONG_SIDE_TEST", "64"]
        + ["SOLVER.IMS_PER_BATCH", "8", "DATALOADER.NUM_WORKERS", "0"],
    )
    model = BoneAgeTrainer.build_model(cfg).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    loader = BoneAgeTrainer.build_val_loss_loader(cfg, tiny_dataset)
    losses = validation_losses(model, loader)
    assert {"loss_ord", "loss_patch", "loss_rpn_cls", "loss_rpn_loc"} <= set(losses)
    assert losses["total_loss"] == pytest.approx(
        sum(v for k, v in losses.items() if k != "total_loss")
    )
    assert validation_losses(model, loader) == losses  # seeded: the same sampling every time
    assert not model.training and not any(m.training for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "period, message", [("40", "VAL_LOSS_PERIOD=40 needs a split"), ("30", "multiple of 20")]
)
def test_bad_validation_settings_are_config_errors(period, message):
    cfg = load_config(
        str(CONFIGS / "Global/R18-phantom-demo.yaml"),
        ["DATASETS.TEST", "()", "BONEAGE.EVAL.VAL_LOSS_PERIOD", period],
    )
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)
