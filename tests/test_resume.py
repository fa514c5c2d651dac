"""Killed, interrupted and repeated runs: resume where they stopped, and repeat exactly."""

import os
import random
import signal
import subprocess
import sys
import time

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import REPO, TINY, run_cli

# Three short epochs with last.ckpt refreshed every 5 steps, so a kill can land anywhere.
EPOCHS, STEPS = 3, 30
RESUMABLE = [*TINY, "--trainer.max_epochs", str(EPOCHS), "--trainer.limit_train_batches", str(STEPS),
             "--last_checkpoint.every_n_train_steps", "5"]


def start(cwd, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "src.train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def assert_finished(run_dir):
    """The run holds its planned epochs and steps, and the test accuracy of its best checkpoint."""
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == EPOCHS * STEPS
    assert last["loops"]["fit_loop"]["epoch_progress"]["total"]["processed"] == EPOCHS
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    assert 0.9 < acc.Scalars("hp/test_acc")[-1].value <= 1
    assert max(e.step for e in acc.Scalars("train/loss")) >= EPOCHS * STEPS - 10  # the curves went on to the end


def test_sigkill_then_resume_last(tmp_path):
    seed = random.randrange(10**6)
    proc = start(tmp_path, "fit", *RESUMABLE)
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    time.sleep(random.Random(seed).uniform(0, 3))  # anywhere in the run, mid-write included
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):  # whatever survived is whole
        torch.load(ckpt, weights_only=True)
    out = run_cli("fit", "--ckpt_path", "last", cwd=tmp_path).stdout  # no other argument: the run's own config
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["version_0"], f"seed {seed}"
    assert "test accuracy" in out
    assert_finished(run_dir)


def test_ctrl_c_saves_and_prints_resume_command(tmp_path):
    proc = start(tmp_path, "fit", *RESUMABLE, "--last_checkpoint.every_n_train_steps", "0")
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    wait_for(run_dir / "environment.yaml", proc)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err
    command = err.strip().splitlines()[-1]
    assert command == "resume with: python -m src.train fit --ckpt_path logs/mnist/version_0/checkpoints/last.ckpt"
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < saved["global_step"] < EPOCHS * STEPS
    run_cli(*command.removeprefix("resume with: python -m src.train ").split(), cwd=tmp_path)
    assert_finished(run_dir)


def test_same_seed_same_result(tmp_path):
    scores = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        run_cli("fit", *TINY, "--trainer.limit_train_batches", "20", cwd=tmp_path / name)
        run_dir = tmp_path / name / "logs" / "mnist" / "version_0"
        acc = EventAccumulator(str(run_dir))
        acc.Reload()
        scores.append([e.value for e in acc.Scalars("val/acc")] + [e.value for e in acc.Scalars("train/loss")])
        scores.append(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    assert scores[0] == scores[2]  # bit for bit
    assert all(torch.equal(scores[1][k], scores[3][k]) for k in scores[1])
