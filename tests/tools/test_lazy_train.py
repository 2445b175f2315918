"""tools/lazyconfig_train_net.py (boneage-lazy-train): a packaged LazyConfig trained for a few
iterations on the tiny dataset with Detectron2's train.* / dataloader.* overrides, evaluated,
checkpointed, and evaluated again from its checkpoint with --eval-only."""

from __future__ import annotations

import json

import pytest

from tests.cli import load_tool

lazy_train = load_tool("lazyconfig_train_net")


def test_lazy_config_trains_evaluates_and_reloads(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "lazy"
    overrides = [
        f"dataloader.train.dataset.names={tiny_dataset}",
        f"dataloader.test.dataset.names={tiny_dataset}",
        "dataloader.train.total_batch_size=4",
        "dataloader.train.num_workers=0",
        "dataloader.test.num_workers=0",
        "dataloader.evaluator.bootstrap_samples=50",
        "train.max_iter=3",
        "train.eval_period=0",
        "train.seed=1",
        f"train.output_dir={out}",
    ]
    argv = ["--config-file", "Global/R18-phantom-demo.py", *overrides]
    results = lazy_train.main(lazy_train.build_parser().parse_args(argv))
    assert results["boneage"]["num_images"] == 24
    assert (out / "model_final.pth").is_file() and (out / "config.yaml").is_file()
    assert (out / "inference/boneage_predictions.csv").is_file()  # ${train.output_dir}/inference
    lines = [json.loads(x) for x in (out / "metrics.json").read_text().splitlines()]
    assert any("total_loss" in r for r in lines) and any("boneage/MAE" in r for r in lines)

    argv = [argv[0], argv[1], "--eval-only", *overrides]  # overrides come last
    argv.append(f"train.init_checkpoint={out / 'model_final.pth'}")
    again = lazy_train.main(lazy_train.build_parser().parse_args(argv))
    assert again["boneage"]["MAE"] == pytest.approx(results["boneage"]["MAE"], abs=1e-4)


def test_an_unknown_config_name_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as e:
        lazy_train.cli(["--config-file", "Global/R18-demo.py"])
    assert e.value.code == 2
    assert "did you mean Global/R18-phantom-demo.py" in capsys.readouterr().err
