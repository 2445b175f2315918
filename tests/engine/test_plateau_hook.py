"""ReduceLROnPlateau: reduces the scheduler's base LRs after N bad evaluations, survives resume."""

from types import SimpleNamespace

import pytest
import torch
from detectron2.engine import default_argument_parser
from detectron2.engine import hooks as d2_hooks
from detectron2.solver import LRMultiplier, WarmupParamScheduler
from detectron2.utils.events import EventStorage
from fvcore.common.param_scheduler import ConstantParamScheduler

from boneage_d2.engine.hooks import ReduceLROnPlateau
from tests.cli import load_tool
from tests.fixtures import CONFIGS

GLOBAL_DEMO = str(CONFIGS / "Global/R18-phantom-demo.yaml")
PERIOD = 10
BASE_LR = 0.01


def _fake_trainer(max_iter=200):
    """What the hook touches of a trainer: optimizer, LRMultiplier scheduler, storage, iter."""
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": BASE_LR / 2}], lr=BASE_LR)
    sched = WarmupParamScheduler(ConstantParamScheduler(1.0), 0.1, 5 / max_iter)
    scheduler = LRMultiplier(optimizer, sched, max_iter=max_iter)
    trainer = SimpleNamespace(optimizer=optimizer, scheduler=scheduler, iter=0, max_iter=max_iter)
    lr_hook = d2_hooks.LRScheduler()
    lr_hook.trainer = trainer
    lr_hook.before_train()
    return trainer, lr_hook


def _run(trainer, lr_hook, hook, values, start=0):
    """Iterations with an "evaluation" putting the next value every PERIOD iterations."""
    values = iter(values)
    with EventStorage(start) as storage:
        trainer.storage = storage
        for it in range(start, trainer.max_iter):
            trainer.iter = storage.iter = it
            lr_hook.after_step()  # Detectron2's: rewrites param_groups from base_lrs
            if (it + 1) % PERIOD == 0:
                value = next(values, None)
                if value is None:
                    return
                storage.put_scalars(**{"boneage/MAE": value}, smoothing_hint=False)
            hook.after_step()


def _hook(trainer, **kw):
    hook = ReduceLROnPlateau(PERIOD, "boneage/MAE", patience=3, factor=0.1, **kw)
    hook.trainer = trainer
    return hook


def test_reduces_base_lrs_after_patience_bad_evaluations():
    trainer, lr_hook = _fake_trainer()
    hook = _hook(trainer)
    # improve, improve, then 3 evaluations no better than 9.0 -> one reduction
    _run(trainer, lr_hook, hook, [10.0, 9.0, 9.5, 9.0, 12.0])
    assert hook.num_reductions == 1 and hook.best == 9.0 and hook.num_bad == 0
    assert trainer.scheduler.base_lrs == pytest.approx([BASE_LR / 10, BASE_LR / 20])
    # The next scheduler step does not undo it (LRMultiplier rewrites lr from base_lrs each step).
    lr_hook.after_step()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(BASE_LR / 10)
    assert trainer.optimizer.param_groups[1]["lr"] == pytest.approx(BASE_LR / 20)


def test_max_mode_threshold_and_min_lr():
    trainer, lr_hook = _fake_trainer()
    hook = _hook(trainer, mode="max", threshold=0.5, min_lr=BASE_LR / 15)
    # 50.3 and 50.1 are not better than 50 by more than 0.5; 51 is.
    _run(trainer, lr_hook, hook, [50.0, 50.3, 51.0, 50.1, 50.2, 50.4, 49.0, 49.0, 49.0])
    assert hook.best == 51.0 and hook.num_reductions == 2
    # 0.01 -> 0.001 -> MIN_LR (not 0.0001); 0.005 -> MIN_LR (not 0.0005) -> MIN_LR.
    assert trainer.scheduler.base_lrs == pytest.approx([BASE_LR / 15, BASE_LR / 15])


def test_state_dict_round_trip_continues_the_plateau():
    trainer, lr_hook = _fake_trainer()
    hook = _hook(trainer)
    _run(trainer, lr_hook, hook, [10.0, 11.0, 12.0])  # two bad evaluations
    state = {"plateau": hook.state_dict(), "scheduler": trainer.scheduler.state_dict()}
    assert state["plateau"] == {
        "best": 10.0,
        "num_bad": 2,
        "num_reductions": 0,
        "last_eval_iter": 2 * PERIOD + PERIOD - 1,
    }

    resumed, resumed_lr_hook = _fake_trainer()
    resumed.scheduler.load_state_dict(state["scheduler"])
    new_hook = _hook(resumed)
    new_hook.load_state_dict(state["plateau"])
    # One more bad evaluation after the resume completes the plateau of 3.
    _run(resumed, resumed_lr_hook, new_hook, [10.5], start=3 * PERIOD)
    assert new_hook.num_reductions == 1
    assert resumed.scheduler.base_lrs == pytest.approx([BASE_LR / 10, BASE_LR / 20])


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="TEST.EVAL_PERIOD"):
        ReduceLROnPlateau(0)
    with pytest.raises(ValueError, match="MODE='up'"):
        ReduceLROnPlateau(10, mode="up")
    with pytest.raises(ValueError, match="FACTOR"):
        ReduceLROnPlateau(10, factor=10.0)


@pytest.mark.slow
def test_trainer_hook_reduces_lr_and_resume_keeps_it(tiny_dataset, tmp_path):
    """BoneAgeTrainer adds the hook after EvalHook (checkpointer after it); a resume restores
    both the reduced base LRs and the hook's counters."""
    train_net = load_tool("train_net")

    def args(iters, *extra):
        opts = [
            "DATASETS.TRAIN", f"('{tiny_dataset}',)", "DATASETS.TEST", f"('{tiny_dataset}',)",
            "BONEAGE.INPUT.LONG_SIDE_TRAIN", "64", "BONEAGE.INPUT.LONG_SIDE_TEST", "64",
            "BONEAGE.HEAD.NAME", "RegressionAgeHead", "SOLVER.IMS_PER_BATCH", "4",
            "SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", "()", "SOLVER.WARMUP_ITERS", "0",
            "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "2",
            "DATALOADER.NUM_WORKERS", "0", "BONEAGE.EVAL.BOOTSTRAP_SAMPLES", "0",
            "BONEAGE.SOLVER.PLATEAU.ENABLED", "True", "BONEAGE.SOLVER.PLATEAU.PATIENCE", "1",
            # a threshold nothing can beat: every evaluation after the first one is "bad"
            "BONEAGE.SOLVER.PLATEAU.THRESHOLD", "1e9", "OUTPUT_DIR", str(tmp_path),
        ]  # fmt: skip
        return default_argument_parser().parse_args(["--config-file", GLOBAL_DEMO, *extra, *opts])

    cfg = train_net.setup(args(6))
    trainer = train_net.BoneAgeTrainer(cfg)
    kinds = [type(h) for h in trainer._hooks]
    at = kinds.index(ReduceLROnPlateau)
    assert kinds[at - 1] is d2_hooks.EvalHook and kinds[at + 1] is d2_hooks.PeriodicCheckpointer
    trainer.resume_or_load(resume=False)
    trainer.train()
    hook = trainer._hooks[at]
    # evaluations at iterations 1 (first: the best) and 3 (bad: reduce); 5 is the last iteration
    assert hook.num_reductions == 1 and hook.last_eval_iter == 3
    lr = cfg.SOLVER.BASE_LR
    assert trainer.scheduler.base_lrs[0] == pytest.approx(lr * 0.1)

    cfg = train_net.setup(args(8, "--resume"))
    resumed = train_net.BoneAgeTrainer(cfg)
    resumed.resume_or_load(resume=True)
    new_hook = next(h for h in resumed._hooks if isinstance(h, ReduceLROnPlateau))
    assert resumed.start_iter == 6
    assert new_hook.state_dict() == hook.state_dict()
    assert resumed.scheduler.base_lrs[0] == pytest.approx(lr * 0.1)
    resumed.train()  # evaluation at iteration 7 is the last one (after_train): no new decision
    assert new_hook.num_reductions == 1
