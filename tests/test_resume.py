"""Killed, interrupted and repeated runs: resume where they stopped, and repeat exactly."""

import signal

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data import EpochSampler
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


def signal_at(step: int, signal: str, during: bool = False) -> list[str]:
    return ["--trainer.callbacks+=tests.signals.SignalAt", "--trainer.callbacks.step", str(step),
            "--trainer.callbacks.signal", signal, "--trainer.callbacks.during", str(during).lower()]


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


# Exact resume: 3 epochs of 8 steps, last.ckpt every 3 steps. The weight average decays from step 3 on: during
# its warm-up it copies the weights, and an average one update behind would catch up unseen.
EXACT = [*TINY, "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "8", "--data.batch_size", "64",
         "--data.eval_batch_size", "500", "--trainer.limit_test_batches", "1", "--model.lr", "0.05",
         "--model.ema_decay", "0.9", "--model.ema_warmup_steps", "2", "--last_checkpoint.every_n_train_steps", "3"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The EXACT run left alone: its run directory."""
    work = tmp_path_factory.mktemp("uninterrupted")
    run_cli("fit", *EXACT, cwd=work)
    return work / "logs" / "mnist" / "version_0"


def assert_bitwise_equal(a, b, where="") -> None:
    """Nested dicts, lists and tensors equal bit for bit (dtype, shape and every byte; -0.0 is not 0.0)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a.keys() ^ b.keys())}"
        for k in a:
            assert_bitwise_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_bitwise_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{where}: {a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}"
        same = torch.equal(a.flatten().view(torch.uint8), b.flatten().view(torch.uint8))
        assert same, f"{where} differs, by up to {(a.double() - b.double()).abs().max().item():.3g}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def final_state(run_dir) -> dict:
    """What training leaves: weights and their average, optimiser, schedule, step; best score and best.ckpt's weights."""
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    best = next(v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint"))
    return {"global_step": last["global_step"], "state_dict": last["state_dict"],
            "optimizer_states": last["optimizer_states"], "lr_schedulers": last["lr_schedulers"],
            "best": {k: best[k] for k in ("best_model_score", "best_model_path", "best_k_models")},
            "best.ckpt": torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]}


@pytest.mark.parametrize("sig, step, during, saved", [
    pytest.param("SIGKILL", 13, False, 12, id="sigkill-mid-epoch"),  # epoch 2, 5 of 8 steps done; last.ckpt at 4
    pytest.param("SIGKILL", 17, False, 16, id="sigkill-after-epoch-end"),  # epoch 3, step 1; last.ckpt: end of epoch 2
    pytest.param("SIGINT", 11, True, 11, id="ctrl-c-during-step"),  # Ctrl-C inside step 11: it ends, then saves
])
def test_resume_is_exact(uninterrupted, tmp_path, sig, step, during, saved):
    """Killed or interrupted, then resumed from last.ckpt: the same weights, average, optimiser and schedule, bit
    for bit, as the run left alone (same remaining batches in the same order, same augmentation and dropout)."""
    proc = run_cli("fit", *EXACT, *signal_at(step, sig, during), cwd=tmp_path, check=False)
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    else:
        assert proc.returncode == 1 and "stopping after this training step" in proc.stderr, proc.stderr[-2000:]
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == saved
    run_cli("fit", "--ckpt_path", "last", cwd=tmp_path)
    assert_bitwise_equal(final_state(run_dir), final_state(uninterrupted))


def test_epoch_sampler_keeps_the_orders_it_replaces_and_resumes_partway():
    """The training order is the one torch's RandomSampler (one device) or DistributedSampler (DDP, as Lightning
    sets it up) gave, so uninterrupted runs train as before; a resumed pass uses its saved seed and skips ahead."""
    data = range(1001)  # not a multiple of the ranks: DistributedSampler pads
    for rank in (0, 1):
        ours, theirs = EpochSampler(data, seed=7, num_replicas=2, rank=rank), torch.utils.data.DistributedSampler(
            data, num_replicas=2, rank=rank, shuffle=True, seed=7)
        for epoch in (0, 3):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs) and ours.pass_seed == 7 + epoch
    torch.manual_seed(0)
    expected = [list(torch.utils.data.RandomSampler(data)) for _ in range(2)]
    torch.manual_seed(0)
    ours = EpochSampler(data)
    assert [list(ours) for _ in range(2)] == expected  # a seed drawn from torch's generator per pass, as RandomSampler
    first = list(ours)
    resumed = EpochSampler(data)
    resumed.resume(ours.pass_seed, 300)
    state = torch.get_rng_state()
    assert list(resumed) == first[300:] and torch.equal(torch.get_rng_state(), state)  # no draw
