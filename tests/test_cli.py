"""End to end through the command line, as a user runs it (small subset, one epoch, CPU)."""

import csv
import re

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import src.train
from src.model import Net, complexity
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
    # hp/best_val_acc comes from the checkpoint callback's score; the per-epoch curve must agree with it.
    best_val = acc.Scalars("hp/best_val_acc")[0].value
    assert best_val == pytest.approx(max(e.value for e in acc.Scalars("val/acc"))) and 0.9 < best_val <= 1
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
    assert "checkpoint  logs/mnist/version_0/checkpoints/best.ckpt  (epoch 0, step 100)" in proc.stdout  # what it evaluated


@pytest.mark.parametrize("subcommand,ckpt,expected", [
    ("test", [], "best.ckpt"), ("validate", ["--ckpt_path", "best"], "best.ckpt"),
    ("predict", ["--ckpt_path", "last"], "last.ckpt"), ("test", ["--ckpt_path", "last"], "last.ckpt")])
def test_evaluation_uses_the_latest_run(tiny_run, subcommand, ckpt, expected):
    """Without --ckpt_path (or with best|last) the latest run's checkpoint is evaluated, never random weights."""
    proc = run_cli(subcommand, *TINY, *ckpt, cwd=tiny_run["work"])
    assert re.search(rf"^checkpoint  logs/mnist/version_0/checkpoints/{expected}  \(epoch 0, step 100\)$", proc.stdout, re.M), proc.stdout
    if subcommand == "test":
        logged = events(tiny_run["run_dir"]).Scalars("hp/test_acc")[0].value
        assert float(re.search(r"test/acc\s*│\s*([\d.]+)", proc.stdout).group(1)) > logged - 0.01  # a trained model


@pytest.mark.parametrize("subcommand", ["test", "validate", "predict"])
def test_evaluation_without_a_trained_model_refuses(tmp_path, subcommand):
    proc = run_cli(subcommand, *TINY, cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no best.ckpt under logs/")
    assert not (tmp_path / "logs").exists()  # no run directory was started


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


def resolved_config(monkeypatch, capsys, *args) -> dict:
    """`fit ... --print_config`, in-process: the config LightningCLI would run with."""
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as done:
        src.train.main(["fit", *args, "--print_config"])
    assert not done.value.code
    return yaml.safe_load(capsys.readouterr().out)


def test_recipe_is_layered_over_default_and_the_command_line_wins(monkeypatch, capsys):
    config = resolved_config(monkeypatch, capsys, "--config", "configs/fast.yaml", "--trainer.max_epochs", "3")
    assert config["model"]["stem_stride"] == 2 and config["model"]["ema_decay"] == 0.99  # from fast.yaml
    assert config["model"]["channels"] == [16, 32, 64, 128] and config["data"]["batch_size"] == 256  # from default.yaml
    assert config["trainer"]["max_epochs"] == 3  # fast.yaml says 9: the command line comes last
    assert config["checkpoint"]["monitor"] == "val/acc"


def readme_sizes() -> dict[str, tuple[int, float]]:
    """The README's model-size table: config name -> (parameters, millions of MACs per image)."""
    rows = re.findall(r"^\| `(\w+)` \| ([\d,]+) \| ([\d.]+) M \|", (REPO / "README.md").read_text(), re.M)
    return {name: (int(params.replace(",", "")), float(macs)) for name, params, macs in rows}


@pytest.mark.parametrize("name", ["default", "fast", "best", "ddp", "gpu"])
def test_every_shipped_config_parses_and_builds_the_model_the_readme_states(monkeypatch, capsys, name):
    args = [] if name == "default" else ["--config", f"configs/{name}.yaml"]
    m = resolved_config(monkeypatch, capsys, *args)["model"]
    params, macs = complexity(Net(tuple(m["channels"]), m["convs_per_stage"], m["hidden"], m["dropout"], m["stem_stride"],
                                  m["pool_first"]))
    assert readme_sizes()[name] == (params, round(macs / 1e6, 2))


def test_bf16_falls_back_to_fp32_on_a_cpu_without_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(src.train, "cpu_has_fast_bf16", lambda: False)  # as on a CPU without AMX or AVX512-BF16
    monkeypatch.chdir(tmp_path)
    src.train.main(["fit", *TINY, "--trainer.limit_train_batches", "5", "--trainer.log_every_n_steps", "5", "--trainer.precision", "bf16-mixed"])
    err = capsys.readouterr().err
    assert re.search(r"^note: .* has no AMX or AVX512-BF16, .* training in 32-true instead", err, re.M), err[-2000:]
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    assert yaml.safe_load((run_dir / "results.yaml").read_text())["precision"] == "32-true"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["precision"] == "32-true"


def test_a_checkpoint_from_before_pool_first_is_evaluated_as_it_was_trained(tmp_path):
    """Checkpoints saved before `model.pool_first` existed hold no such key, and were trained in the
    notebook's order; configs/default.yaml now says true, which must not rebuild them the other way."""
    fit = run_cli("fit", *TINY, "--trainer.limit_train_batches", "20", "--model.pool_first", "false", cwd=tmp_path)
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    del ckpt["hyper_parameters"]["pool_first"]
    torch.save(ckpt, tmp_path / "old.ckpt")
    proc = run_cli("test", *TINY, "--ckpt_path", "old.ckpt", cwd=tmp_path)
    logged = events(run_dir).Scalars("hp/test_acc")[0].value
    retested = events(tmp_path / "logs" / "mnist" / "version_1").Scalars("test/acc")[-1].value
    assert retested == pytest.approx(logged, abs=1e-6), proc.stdout + fit.stdout
