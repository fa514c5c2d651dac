"""Killed, interrupted and repeated runs: resume where they stopped, and repeat exactly."""

import signal

import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import TINY, run_cli

# Three short epochs with last.ckpt refreshed every 5 steps, so a kill can land anywhere.
EPOCHS, STEPS = 3, 30
RESUMABLE = [*TINY, "--trainer.max_epochs", str(EPOCHS), "--trainer.limit_train_batches", str(STEPS),
             "--last_checkpoint.every_n_train_steps", "5"]


def assert_finished(run_dir):
    """The run holds its planned epochs and steps, and the test accuracy of its best checkpoint."""
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == EPOCHS * STEPS
    assert last["loops"]["fit_loop"]["epoch_progress"]["total"]["processed"] == EPOCHS
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    assert 0.9 < acc.Scalars("hp/test_acc")[-1].value <= 1
    assert max(e.step for e in acc.Scalars("train/loss")) >= EPOCHS * STEPS - 10  # the curves went on to the end


def signal_at(step: int, signal: str) -> list[str]:
    return ["--trainer.callbacks+=tests.signals.SignalAt", "--trainer.callbacks.step", str(step),
            "--trainer.callbacks.signal", signal]


def test_sigkill_mid_run_then_resume_last(tmp_path):
    # Killed (kill -9) after step 47 of 90, in the second epoch: last.ckpt was last written at step 45.
    proc = run_cli("fit", *RESUMABLE, *signal_at(47, "SIGKILL"), cwd=tmp_path, check=False)
    assert proc.returncode == -signal.SIGKILL and "test accuracy" not in proc.stdout  # it died mid-run
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 45
    out = run_cli("fit", "--ckpt_path", "last", cwd=tmp_path).stdout  # no other argument: the run's own config
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["version_0"]
    assert "test accuracy" in out
    assert_finished(run_dir)


def test_ctrl_c_saves_and_prints_resume_command(tmp_path):
    proc = run_cli("fit", *RESUMABLE, "--last_checkpoint.every_n_train_steps", "0", *signal_at(17, "SIGINT"),
                   cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    command = proc.stderr.strip().splitlines()[-1]
    assert command == "resume with: python -m src.train fit --ckpt_path logs/mnist/version_0/checkpoints/last.ckpt"
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 17
    run_cli(*command.removeprefix("resume with: python -m src.train ").split(), cwd=tmp_path)
    assert_finished(run_dir)


def test_resume_refuses_changes_that_would_be_ignored(tmp_path):
    run_cli("fit", *RESUMABLE, *signal_at(17, "SIGINT"), cwd=tmp_path, check=False)
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    for args, key in ((["--model.lr", "0.05"], "--model.lr"), (["--trainer.max_epochs", "5"], "--trainer.max_epochs"),
                      (["--data.batch_size", "128"], "--data.batch_size")):
        proc = run_cli("fit", "--ckpt_path", "last", *args, cwd=tmp_path, check=False)
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert last.startswith(f"error: {key} cannot change when resuming"), last
    # The same value as saved is no change, and a setting that does not alter training takes effect.
    run_cli("fit", "--ckpt_path", "last", "--trainer.max_epochs", str(EPOCHS), "--data.eval_batch_size", "500",
            cwd=tmp_path)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["eval_batch_size"] == 500
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
