"""End to end through the command line, as a user runs it (small subset, one epoch, CPU)."""

import csv
import re

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import REPO, TINY, run_cli


def events(run_dir):
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_fit_writes_run_directory(tiny_run):
    run_dir = tiny_run["run_dir"]
    assert tiny_run["best"].is_file() and tiny_run["last"].is_file()
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["channels"] == [16, 32, 64] and config["trainer"]["max_epochs"] == 1
    # Checkpoints hold primitives only: they load under torch's safe weights_only default.
    ckpt = torch.load(tiny_run["best"], weights_only=True)
    assert ckpt["hyper_parameters"]["hidden"] == 32 and "net.features.0.weight" in ckpt["state_dict"]


def test_fit_prints_summary(tiny_run):
    out = tiny_run["stdout"]
    for key in ("test accuracy", "best val accuracy", "checkpoint", "run directory", "wall time"):
        assert re.search(rf"^{key}\s", out, re.M), key
    assert "logs/mnist/version_0/checkpoints/best.ckpt" in out
    assert "tensorboard --logdir logs" in out
    test_acc = float(re.search(r"^test accuracy\s+([\d.]+)%", out, re.M).group(1))
    assert 95 < test_acc < 100  # 100 steps of a small net already get most digits right


def test_tensorboard_holds_scalars_figures_and_hparams(tiny_run):
    acc = events(tiny_run["run_dir"])
    tags = acc.Tags()
    for tag in ("train/loss", "train/acc", "train/lr", "val/loss", "val/acc", "test/loss", "test/acc",
                "hp/test_acc", "hp/best_val_acc"):
        assert tag in tags["scalars"], tag
    assert {"test/confusion_matrix", "test/misclassified"} <= set(tags["images"])
    assert acc.Images("test/misclassified")[0].width > 100
    lrs = [e.value for e in acc.Scalars("train/lr")]
    assert max(lrs) > lrs[0]  # the one-cycle warm-up is visible
    hp_test = acc.Scalars("hp/test_acc")[0].value
    assert hp_test == pytest.approx(acc.Scalars("test/acc")[-1].value) and 0.9 < hp_test <= 1
    # The hparams tab is populated, with no placeholder hp_metric = -1.
    assert "hp_metric" not in tags["scalars"]
    plugin = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugin and b"channels" in plugin["_hparams_/session_start_info"]


def test_test_subcommand_reproduces_logged_accuracy(tiny_run):
    runs = tiny_run["work"] / "logs" / "mnist"
    before = set(runs.iterdir())
    proc = run_cli("test", *TINY, "--ckpt_path", str(tiny_run["best"]), cwd=tiny_run["work"])
    (test_dir,) = set(runs.iterdir()) - before  # the test run gets a run directory of its own
    logged = events(tiny_run["run_dir"]).Scalars("hp/test_acc")[0].value
    retested = events(test_dir).Scalars("test/acc")[-1].value
    assert retested == pytest.approx(logged, abs=1e-6), proc.stdout


def test_predict_writes_csv(tiny_run):
    proc = run_cli("predict", *TINY, "--ckpt_path", str(tiny_run["best"]), cwd=tiny_run["work"])
    path = re.search(r"predictions: (\S+\.csv)", proc.stdout).group(1)
    rows = list(csv.DictReader(open(tiny_run["work"] / path)))
    assert len(rows) == 10_000 and [int(r["index"]) for r in rows] == list(range(10_000))
    assert {int(r["digit"]) for r in rows} == set(range(10))
    assert all(0.1 <= float(r["probability"]) <= 1 for r in rows)


def test_validate_subcommand(tiny_run):
    proc = run_cli("validate", *TINY, "--ckpt_path", str(tiny_run["best"]), cwd=tiny_run["work"])
    assert "val/acc" in proc.stdout


def test_print_config_and_overrides():
    proc = run_cli("fit", "--config", "configs/default.yaml", "--trainer.max_epochs", "3", "--print_config", cwd=REPO)
    config = yaml.safe_load(proc.stdout)
    assert config["trainer"]["max_epochs"] == 3
    assert config["checkpoint"]["monitor"] == "val/acc" and config["model"]["channels"] == [16, 32, 64, 128]
