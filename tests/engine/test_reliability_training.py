"""Reliability of training (docs/training.md, "Scaling out and reliability"): exact resume after
SIGKILL, divergence stops with the last good checkpoint intact, CPU determinism, and DDP on CPU
(one machine with --num-gpus 2, two machines on loopback).

The end-to-end tests run tools/train_net.py as subprocesses on a tiny dataset written to
``$BONEAGE_DATASETS/phantom/coco/{train,val}.json`` (the built-in ``phantom_boneage_*`` names);
in this process the same jsons are ``reliability_train`` / ``reliability_val``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from detectron2.engine import default_argument_parser

from boneage_d2.data import register_boneage_split
from boneage_d2.engine import BoneAgeTrainer
from boneage_d2.engine.hooks import DivergenceError, FiniteWeightsCheck, check_finite_losses
from boneage_d2.evaluation import PREDICTIONS_CSV
from tests.cli import load_tool
from tests.fixtures import REPO, write_tiny_dataset

train_net = load_tool("train_net")

CONFIG = str(REPO / "configs/Global/R18-phantom-demo.yaml")
TRAIN_NET = str(REPO / "tools/train_net.py")
PERIOD = 4  # SOLVER.CHECKPOINT_PERIOD of the subprocess runs
SUBPROCESS_TIMEOUT_S = 300


def _opts(out_dir, iters: int, period: int = PERIOD, train="phantom_boneage_train", test=None):
    """The tiny-run overrides of tests/test_train_net.py (R18, 96 px, batch 8, no workers)."""
    test = "phantom_boneage_val" if test is None else test
    return [
        *("DATASETS.TRAIN", f"('{train}',)", "DATASETS.TEST", f"('{test}',)" if test else "()"),
        *("BONEAGE.INPUT.LONG_SIDE_TRAIN", "96", "BONEAGE.INPUT.LONG_SIDE_TEST", "96"),
        *("BONEAGE.INPUT.RANDOM_SCALE", "(1.0, 1.0)", "BONEAGE.HEAD.NAME", "RegressionAgeHead"),
        *("SOLVER.IMS_PER_BATCH", "8", "SOLVER.BASE_LR", "0.003", "SOLVER.STEPS", "()"),
        *("SOLVER.MAX_ITER", str(iters), "SOLVER.WARMUP_ITERS", "2"),
        *("SOLVER.CHECKPOINT_PERIOD", str(period), "TEST.EVAL_PERIOD", "0"),
        *("DATALOADER.NUM_WORKERS", "0", "BONEAGE.EVAL.BOOTSTRAP_SAMPLES", "0"),
        *("SEED", "1", "OUTPUT_DIR", str(out_dir)),
    ]


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory) -> Path:
    """``$BONEAGE_DATASETS`` for the subprocesses: the tiny dataset as phantom train and val. The
    same jsons are registered in this process as ``reliability_train`` / ``reliability_val``."""
    from detectron2.data import DatasetCatalog

    root = tmp_path_factory.mktemp("datasets")
    coco = root / "phantom" / "coco"
    tiny = write_tiny_dataset(coco)
    for split in ("train", "val"):
        shutil.copy(tiny, coco / f"{split}.json")
        if f"reliability_{split}" in DatasetCatalog.list():
            DatasetCatalog.remove(f"reliability_{split}")
        register_boneage_split(f"reliability_{split}", coco / f"{split}.json")
    return root


def _train_net(datasets_root: Path, *args: str, log: Path) -> subprocess.Popen:
    """tools/train_net.py in a subprocess, with this process's torch thread count (CPU kernels
    give bitwise-equal results only at equal thread counts)."""
    env = {**os.environ, "BONEAGE_DATASETS": str(datasets_root)}
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, TRAIN_NET, "--config-file", CONFIG, *args]
    with open(log, "w") as f:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)


def _in_process(*args: str) -> dict:
    """train_net.main in this process, on the ``reliability_*`` names."""
    return train_net.main(default_argument_parser().parse_args(["--config-file", CONFIG, *args]))


def _finish(*runs: tuple[subprocess.Popen, Path]) -> None:
    """Wait for every ``(process, log)``; on a failure or timeout kill those still running."""
    try:
        for proc, log in runs:
            rc = proc.wait(timeout=SUBPROCESS_TIMEOUT_S)
            assert rc == 0, f"{proc.args} exited with {rc}:\n{log.read_text()[-3000:]}"
    finally:
        for proc, _ in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _final_mae(out_dir: Path) -> float:
    """``boneage/MAE`` of the last evaluation in Detectron2's metrics.json."""
    rows = [json.loads(line) for line in (out_dir / "metrics.json").read_text().splitlines()]
    return [r for r in rows if "boneage/MAE" in r][-1]["boneage/MAE"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, f"{a} and {b} differ in {differ[:5]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# 1. Resume after SIGKILL ------------------------------------------------------------------------


def _kill_after_checkpoint(proc: subprocess.Popen, out_dir: Path, ckpt: str, log: Path) -> None:
    """Poll until ``last_checkpoint`` names ``ckpt``, then SIGKILL ``proc``; raise if it ended
    first."""
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
    tag = out_dir / "last_checkpoint"
    while not (tag.is_file() and tag.read_text() == ckpt):
        if proc.poll() is not None:
            raise RuntimeError(f"run ended before writing {ckpt}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ckpt} not written within {SUBPROCESS_TIMEOUT_S} s")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)


@pytest.mark.slow
def test_resume_after_sigkill_repeats_the_uninterrupted_run(datasets_root, tmp_path):
    """Kill -9 after the first periodic checkpoint, --resume: the final weights are bitwise equal
    to an uninterrupted run's and the MAE is exactly equal (tolerance 0). Exact because
    ``ExactResume`` re-seeds the RNGs and restarts the data stream from (SEED, iteration) at
    every checkpoint boundary, in both runs, and CPU kernels are deterministic at a fixed thread
    count. The uninterrupted run runs in this process meanwhile (it also shows that the CLI and
    ``train_net.main`` train identically)."""
    iters = 2 * PERIOD
    full, killed = tmp_path / "full", tmp_path / "killed"
    log = tmp_path / "killed.log"
    p_kill = _train_net(datasets_root, *_opts(killed, iters), log=log)
    errors = []

    def killer():
        try:
            _kill_after_checkpoint(p_kill, killed, f"model_{PERIOD - 1:07d}.pth", log)
        except Exception as e:  # noqa: BLE001  (re-raised in the test thread)
            errors.append(e)

    watcher = threading.Thread(target=killer)
    watcher.start()
    try:
        full_mae = _in_process(
            *_opts(full, iters, train="reliability_train", test="reliability_val")
        )["boneage"]["MAE"]
    finally:
        watcher.join()
        if p_kill.poll() is None:  # the watcher gave up
            p_kill.kill()
    if errors:
        raise errors[0]
    assert p_kill.wait(timeout=60) == -signal.SIGKILL
    assert not (killed / "model_final.pth").exists(), "killed too late: the run had finished"

    resume_log = tmp_path / "resume.log"
    resume = _train_net(datasets_root, "--resume", *_opts(killed, iters), log=resume_log)
    _finish((resume, resume_log))
    assert f"Starting training from iteration {PERIOD}" in resume_log.read_text()
    _assert_same_weights(full / "model_final.pth", killed / "model_final.pth")
    assert _final_mae(killed) == full_mae


# 2. Divergence ----------------------------------------------------------------------------------


def _args(tiny_dataset, out_dir, *extra, iters: int, period: int, test=None):
    opts = _opts(out_dir, iters, period, train=tiny_dataset, test=test)
    return default_argument_parser().parse_args(["--config-file", CONFIG, *extra, *opts])


def _trainer(tiny_dataset, out_dir, *, iters: int, period: int = 1000) -> BoneAgeTrainer:
    cfg = train_net.setup(_args(tiny_dataset, out_dir, iters=iters, period=period, test=""))
    trainer = BoneAgeTrainer(cfg)
    trainer.resume_or_load(resume=False)
    return trainer


def _record_saves(trainer: BoneAgeTrainer, monkeypatch) -> list[str]:
    saved: list[str] = []
    save = trainer.checkpointer.save

    def recording_save(name, **kwargs):
        saved.append(name)
        return save(name, **kwargs)

    monkeypatch.setattr(trainer.checkpointer, "save", recording_save)
    return saved


@pytest.mark.parametrize("where", ["loss", "weights"])
def test_divergence_stops_and_keeps_the_last_good_checkpoint(
    tiny_dataset, tmp_path, where, monkeypatch
):
    """A NaN loss term at iteration 5 (or NaN weights after the optimizer step of checkpoint
    iteration 5) stops training with a ``DivergenceError`` naming the iteration and the term
    (parameter); no checkpoint is written after the last finite one (model_0000003), which
    stays the one ``last_checkpoint`` names, with finite weights."""
    bad_iter = 5
    trainer = _trainer(tiny_dataset, tmp_path, iters=10, period=2)
    saved = _record_saves(trainer, monkeypatch)
    model = trainer.model
    if where == "loss":
        forward = model.forward

        def nan_forward(batched_inputs):
            losses = forward(batched_inputs)
            if trainer.iter >= bad_iter:
                losses["loss_age"] = losses["loss_age"] * float("nan")
            return losses

        monkeypatch.setattr(model, "forward", nan_forward)
        expected = ["loss_age"]
    else:
        step = trainer.optimizer.step
        name, param = next(iter(model.named_parameters()))

        def nan_step(*a, **k):
            step(*a, **k)
            if trainer.iter == bad_iter:
                with torch.no_grad():
                    param.fill_(float("nan"))

        monkeypatch.setattr(trainer.optimizer, "step", nan_step)
        expected = [name]

    with pytest.raises(DivergenceError) as info:
        trainer.train()
    err = info.value
    assert err.iteration == bad_iter and err.names == expected
    msg = str(err)
    assert f"iteration {bad_iter}" in msg and expected[0] in msg, msg
    assert any("model_0000003.pth" in note for note in err.__notes__)
    assert saved == ["model_0000001", "model_0000003"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    ckpt = torch.load(tmp_path / "model_0000003.pth", map_location="cpu", weights_only=False)
    assert ckpt["iteration"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_finite_checks_name_the_offending_terms_and_parameters():
    """Unit level: every non-finite loss term is named (finite ones are not); the weights check
    runs only at checkpoint iterations and names the non-finite state-dict entries."""
    check_finite_losses({"loss_a": torch.tensor(1.0), "loss_b": torch.tensor(2.0)}, 0)
    losses = {"loss_a": torch.tensor(1.0), "loss_b": torch.tensor(float("inf"))}
    losses["loss_c"] = torch.tensor(float("nan"))
    with pytest.raises(DivergenceError, match=r"iteration 7: loss_b=inf, loss_c=nan\.") as info:
        check_finite_losses(losses, 7)
    assert info.value.names == ["loss_b", "loss_c"]

    model = torch.nn.Linear(2, 1)
    hook = FiniteWeightsCheck(period=4)
    hook.trainer = SimpleNamespace(model=model, iter=2, max_iter=100)
    with torch.no_grad():
        model.bias.fill_(float("nan"))
    hook.after_step()  # iteration 2: no checkpoint, not checked
    hook.trainer.iter = 3
    with pytest.raises(DivergenceError, match=r"after iteration 3: bias\."):
        hook.after_step()


# 3. Determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_identical_losses_on_cpu(tiny_dataset, tmp_path):
    """Two runs with SEED 1 log bitwise-identical losses for 5 iterations and end with
    bitwise-identical weights. (The regression head has one loss term, so Detectron2 logs
    ``total_loss`` only.)"""

    def run(out):
        trainer = _trainer(tiny_dataset, out, iters=5)
        trainer.train()
        losses = [v for v, _ in trainer.storage.history("total_loss").values()]
        return losses, trainer.model.state_dict()

    (first, weights_a), (second, weights_b) = run(tmp_path / "a"), run(tmp_path / "b")
    assert len(first) == 5 and len(set(first)) > 1
    assert first == second
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_deterministic_switch_sets_torch_flags(monkeypatch):
    """``BONEAGE.TRAIN.DETERMINISTIC`` turns on deterministic algorithms (warn-only), cuDNN
    determinism and the cuBLAS workspace setting; with ``CUDNN_BENCHMARK`` it is a config
    error. (Global torch state: restored afterwards.)"""
    from boneage_d2.engine import ConfigError, load_config
    from boneage_d2.engine.trainer import configure_determinism

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    cfg = load_config(CONFIG, ["BONEAGE.TRAIN.DETERMINISTIC", "True", "CUDNN_BENCHMARK", "True"])
    with pytest.raises(ConfigError, match="CUDNN_BENCHMARK"):
        configure_determinism(cfg)
    cfg.CUDNN_BENCHMARK = False
    try:
        configure_determinism(cfg)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)


# 4. Multi-process on CPU ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_process_run(datasets_root, tmp_path_factory) -> Path:
    """``train_net --num-gpus 2`` on CPU (GLOO): a few iterations, then the 2-process evaluation."""
    out = tmp_path_factory.mktemp("ddp") / "out"
    log = out.parent / "train.log"
    _finish((_train_net(datasets_root, "--num-gpus", "2", *_opts(out, PERIOD), log=log), log))
    return out


@pytest.mark.slow
def test_two_process_cpu_training_matches_single_process_eval(two_process_run, datasets_root):
    """The 2-process evaluation (each rank infers half the images; rows gathered and
    de-duplicated) gives exactly the MAE and per-image predictions of a single-process
    --eval-only of the final checkpoint: inference is per image (batch 1, fixed padding) with
    the same kernels and thread count, and the evaluator sorts rows by image id."""
    out = two_process_run
    assert (out / "log.txt.rank1").is_file()  # a second process ran
    name = "reliability_val"
    eval_dir = out.parent / "eval_only"
    single = _in_process(
        "--eval-only",
        *_opts(eval_dir, PERIOD, train="reliability_train", test=name),
        *("MODEL.WEIGHTS", str(out / "model_final.pth")),
    )["boneage"]
    assert single["num_images"] == 24
    assert single["MAE"] == _final_mae(out)

    def predictions(csv_path):
        rows = list(csv.DictReader(open(csv_path)))
        return {r["image_id"]: r["boneage_pred"] for r in rows}

    ddp = predictions(out / "inference" / "phantom_boneage_val" / PREDICTIONS_CSV)
    one = predictions(eval_dir / "inference" / name / PREDICTIONS_CSV)
    assert len(one) == 24 and ddp == one


@pytest.mark.slow
def test_two_machines_on_loopback_match_one_machine_two_processes(
    two_process_run, datasets_root, tmp_path
):
    """``--num-machines 2 --machine-rank 0/1 --num-gpus 1 --dist-url tcp://127.0.0.1:PORT``: the
    same world size, ranks and seed as ``--num-gpus 2``, hence bitwise-equal final weights and
    the same MAE."""
    out = tmp_path / "out"
    url = f"tcp://127.0.0.1:{_free_port()}"
    logs = [tmp_path / f"machine{rank}.log" for rank in (0, 1)]
    procs = [
        _train_net(
            datasets_root,
            *("--num-machines", "2", "--machine-rank", str(rank), "--num-gpus", "1"),
            *("--dist-url", url, *_opts(out, PERIOD)),
            log=logs[rank],
        )
        for rank in (0, 1)
    ]
    _finish(*zip(procs, logs))
    _assert_same_weights(two_process_run / "model_final.pth", out / "model_final.pth")
    assert _final_mae(out) == _final_mae(two_process_run)


def _nan_on_rank1_worker(rank: int, url: str, results) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=url, world_size=2, rank=rank)
    try:
        loss = float("nan") if rank == 1 else 1.0
        check_finite_losses({"loss_age": torch.tensor(loss), "loss_x": torch.tensor(0.5)}, 3)
        results.put((rank, "no error"))
    except DivergenceError as e:
        results.put((rank, str(e)))
    finally:
        # Both ranks leave together, and the rendezvous is a file store (the caller passes a
        # file:// url): with a TCP store, rank 0 hosts the store's server thread, and when it
        # exits while rank 1 is still connected the C++ runtime aborts it ("terminate called
        # without an active exception"), a torch teardown race outside the code under test.
        dist.barrier()
        dist.destroy_process_group()


@pytest.mark.slow
def test_nonfinite_loss_on_one_rank_stops_every_rank(tmp_path):
    """A NaN on rank 1 only raises on both ranks (Detectron2 checks rank 0's average alone, and
    the other ranks then wait for the launch timeout), naming the rank and the term."""
    ctx = torch.multiprocessing.get_context("spawn")
    results = ctx.SimpleQueue()
    procs = torch.multiprocessing.start_processes(
        _nan_on_rank1_worker,
        args=(f"file://{tmp_path / 'rendezvous'}", results),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
    while not procs.join(timeout=1):
        if time.monotonic() > deadline:
            for proc in procs.processes:
                proc.kill()
            pytest.fail("a rank hung: the NaN was not seen on every rank")
    messages = dict(results.get() for _ in range(2))
    for rank in (0, 1):
        assert "iteration 3: rank 1: loss_age=nan." in messages[rank], messages
