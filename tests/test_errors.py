"""Every mistake a user can make ends in one `error:` line, a non-zero exit, and no damage."""

import pytest
import torch
import yaml

import src.data
import src.model
import src.train
from tests.conftest import DATA, REPO, TINY, run_cli


def one_error_line(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in last, last
    return last


@pytest.mark.parametrize("args,fragments", [
    (["--model.chanels", "[8]"], ["model.chanels", "--help"]),
    (["--model.lr", "fast"], ["model.lr", "float"]),
    (["--trainer.max_epochs", "1.5"], ["trainer.max_epochs"]),
    (["--data.batch_size", "0"], ["data.batch_size"]),
])
def test_bad_config_values(args, fragments):
    one_error_line(run_cli("fit", *args, cwd=REPO, check=False), *fragments)


def test_unknown_key_in_config_file(tmp_path):
    (tmp_path / "typo.yaml").write_text("model:\n  chanels: [8, 16, 32]\n")
    one_error_line(run_cli("fit", "--config", str(tmp_path / "typo.yaml"), cwd=REPO, check=False), "model.chanels")


@pytest.fixture
def bad_checkpoints(tmp_path, tiny_run):
    good = tiny_run["best"]
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    (tmp_path / "truncated.ckpt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "empty.ckpt").write_bytes(b"")
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": torch.nn.Linear(2, 2)}, tmp_path / "pickled.ckpt")
    ckpt = torch.load(good, weights_only=True)
    ckpt["hyper_parameters"] = {"learning_rate": 0.001, "hidden_dim": 64}  # another project's module
    torch.save(ckpt, tmp_path / "foreign.ckpt")
    ckpt = torch.load(good, weights_only=True)
    ckpt["state_dict"]["net.features.0.weight"] = torch.zeros(4, 1, 3, 3)  # weights that fit no config
    torch.save(ckpt, tmp_path / "mismatched.ckpt")
    return tmp_path


CHECKPOINT_CASES = [
    ("test", "missing.ckpt", "not found"),
    ("test", "text.ckpt", "truncated or not a PyTorch checkpoint"),
    ("test", "truncated.ckpt", "truncated or not a PyTorch checkpoint"),
    ("test", "empty.ckpt", "empty"),
    ("test", "pickled.ckpt", "refused for safety"),
    ("test", "foreign.ckpt", "another model"),
    ("test", "mismatched.ckpt", "do not fit the model"),
    ("fit", "truncated.ckpt", "truncated or not a PyTorch checkpoint"),
    ("fit", "foreign.ckpt", "another model"),
    ("fit", "mismatched.ckpt", "do not fit the model"),
    ("predict", "mismatched.ckpt", "do not fit the model"),
]


@pytest.mark.parametrize("subcommand,name,fragment", CHECKPOINT_CASES)
def test_unusable_checkpoint(bad_checkpoints, subcommand, name, fragment):
    proc = run_cli(subcommand, *TINY, "--ckpt_path", str(bad_checkpoints / name), cwd=bad_checkpoints, check=False)
    one_error_line(proc, name, fragment)
    assert not (bad_checkpoints / "logs" / "mnist").exists()  # no run directory was started


def test_checkpoint_brings_its_own_model_shape(tiny_run):
    # The default config describes a larger model; the checkpoint's hyperparameters win, as in LightningCLI.
    proc = run_cli("test", "--ckpt_path", str(tiny_run["best"]), "--data.data_dir", str(DATA), cwd=tiny_run["work"])
    assert "test/acc" in proc.stdout


def test_log_directory_not_writable(tmp_path):
    (tmp_path / "file").write_text("a file where a directory should be")
    proc = run_cli("fit", *TINY, "--trainer.logger.init_args.save_dir", str(tmp_path / "file" / "logs"),
                   cwd=tmp_path, check=False)
    one_error_line(proc, "cannot write the log directory", "--trainer.logger.init_args.save_dir")


def test_nothing_to_resume(tmp_path):
    one_error_line(run_cli("fit", "--ckpt_path", "last", cwd=tmp_path, check=False), "no last.ckpt", "logs")


def run_in_process(monkeypatch, capsys, tmp_path, *args):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        src.train.main(["fit", *TINY, *args])
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


def test_nan_loss_stops_and_keeps_last_good_checkpoint(monkeypatch, capsys, tmp_path):
    original = src.data.MNISTDataModule.on_after_batch_transfer

    def poisoned(self, batch, idx):  # a data or optimisation blow-up at step 45 of 2 x 40
        out = original(self, batch, idx)
        if isinstance(out, tuple) and self.trainer.training and self.trainer.global_step >= 45:
            return out[0] * float("nan"), out[1]
        return out

    monkeypatch.setattr(src.data.MNISTDataModule, "on_after_batch_transfer", poisoned)
    message = run_in_process(monkeypatch, capsys, tmp_path, "--trainer.max_epochs", "2",
                             "--trainer.limit_train_batches", "40", "--last_checkpoint.every_n_train_steps", "10")
    assert "loss became nan at epoch 1, step 45" in message
    assert "last good checkpoint is logs/mnist/version_0/checkpoints/last.ckpt" in message
    last = torch.load(tmp_path / "logs/mnist/version_0/checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] == 40  # saved before the blow-up, never after
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    # The advice is a command that works: a new run from the same config at half the learning rate.
    command = message.split("start again with half the learning rate: ")[1]
    assert command.startswith("python -m src.train fit --config logs/mnist/version_0/config.yaml") and "--model.lr 0.1" in command
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    src.train.main(command.split()[3:])
    new_run = tmp_path / "logs/mnist/version_1"
    assert yaml.safe_load((new_run / "config.yaml").read_text())["model"]["lr"] == 0.1
    assert torch.load(new_run / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 80


def test_out_of_memory_names_the_setting(monkeypatch, capsys, tmp_path):
    forward = src.model.Net.forward

    def too_big(self, x):  # what a GPU says when a training batch does not fit
        if self.training:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(self, x)

    monkeypatch.setattr(src.model.Net, "forward", too_big)
    message = run_in_process(monkeypatch, capsys, tmp_path, "--data.batch_size", "4096")
    assert "out of memory" in message and "--data.batch_size 4096" in message


def test_data_error_leaves_runs_alone(tiny_run, tmp_path):
    before = sorted(p.name for p in (tiny_run["work"] / "logs" / "mnist").iterdir())
    proc = run_cli("fit", *TINY, "--data.data_dir", str(tmp_path / "nowhere"), "--data.download", "false",
                   cwd=tiny_run["work"], check=False)
    one_error_line(proc, "not found", "--data.data_dir")
    assert sorted(p.name for p in (tiny_run["work"] / "logs" / "mnist").iterdir()) == before


def test_pyz_help_is_usage_not_a_file_name(tmp_path):
    """`python -m export.pyz --help` prints its usage and writes nothing (it once wrote a zipapp named
    "--help"); no argument is a one-line usage error."""
    import os
    import subprocess
    import sys

    def pyz(*args):
        return subprocess.run([sys.executable, "-m", "export.pyz", *args], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)

    shown = pyz("--help")
    assert shown.returncode == 0 and "OUT.pyz" in shown.stdout and list(tmp_path.iterdir()) == []
    missing = pyz()
    assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1].endswith("required: OUT.pyz")
    made = pyz("predict.pyz")
    assert made.returncode == 0 and (tmp_path / "predict.pyz").stat().st_size > 10_000
