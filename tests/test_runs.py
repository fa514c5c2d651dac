"""`python -m src.runs`: fabricated run directories in, a known table out."""

import yaml

from src.callbacks import cpu_model
from src.runs import main

CPU = "Test CPU @ 1.00GHz"


def fake_run(logs, version, configs, seed, test_acc=None, fit_seconds=100.0, precision="32-true", checkpoints=True,
             resumed=False, extra="", **sections):
    run = logs / "mnist" / f"version_{version}"
    run.mkdir(parents=True)
    command = " ".join(["python -m src.train fit", *(f"--config {c}" for c in configs), f"--seed_everything {seed}",
                        "--trainer.logger.init_args.save_dir logs", extra])
    (run / "environment.yaml").write_text(yaml.safe_dump({"command": command, "configs": configs, "cpu": CPU, "gpu": None}))
    (run / "config.yaml").write_text(yaml.safe_dump({"seed_everything": seed, "trainer": {"max_epochs": 15, "precision": precision},
                                                      **sections}))
    if checkpoints:
        (run / "checkpoints").mkdir()
    if test_acc is not None:
        (run / "results.yaml").write_text(yaml.safe_dump({
            "test_acc": test_acc, "best_val_acc": test_acc - 0.001, "fit_seconds": fit_seconds, "epochs": 15,
            "precision": precision, "seed": seed, "resumed": resumed}))


def test_runs_table(tmp_path, capsys):
    logs = tmp_path / "logs"
    fake_run(logs, 0, [], 0, 0.9960, 150.0)
    fake_run(logs, 1, [], 1, 0.9950, 160.0)
    fake_run(logs, 2, [], 2, 0.9970, 170.0, resumed=True)  # accuracy counts, its one-session time does not
    fake_run(logs, 3, ["configs/fast.yaml"], 0, 0.9940, 40.0, precision="bf16-mixed")
    fake_run(logs, 4, ["configs/fast.yaml"], 1)  # killed: checkpoints but no results
    fake_run(logs, 5, [], 3, checkpoints=False)  # never got to train or test
    (logs / "mnist" / "version_6").mkdir()  # a `test` run: no environment.yaml, not a training run
    fake_run(logs, 7, [], 0, 0.9900, extra="--model.channels '[8, 16, 32, 64]' --trainer.max_epochs=15")  # another model
    assert main(["--logs", str(logs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = [line.split() for line in lines[1:7]]
    assert lines[7].split()[:2] == ["version_7", "default+model.channels=[8,16,32,64]"]
    assert [r[:3] for r in runs] == [["version_0", "default", "0"], ["version_1", "default", "1"],
                                     ["version_2", "default", "2"], ["version_3", "fast", "0"],
                                     ["version_4", "fast", "1"], ["version_5", "default", "3"]]
    assert runs[0][5:8] == ["99.60%", "99.50%", "2:30.0"] and runs[0][-1] == "ok"
    assert lines[2].endswith("ok") and lines[3].endswith("resumed") and lines[5].endswith("interrupted")
    assert lines[6].endswith("not tested")
    summary = {line.split()[0] + " " + line.split()[2]: " ".join(line.split()) for line in lines[10:]}
    assert set(summary) == {"default 32-true", "fast bf16-mixed", "default+model.channels=[8,16,32,64] 32-true"}
    # default: 99.60, 99.50, 99.70 -> mean 99.60, sd 0.10, min 99.50; validation 0.1 below each: mean 99.500;
    # n 3; time over the two whole runs: mean 2:35.0, fastest 2:30.0
    assert "99.60 ± 0.10% 99.50% 99.500% 3 0,1,2 2:35.0 2:30.0" in summary["default 32-true"]
    assert "99.40% 99.40% 99.300% 1 0 0:40.0 0:40.0" in summary["fast bf16-mixed"]
    assert "99.00% 99.00% 98.900% 1 0" in summary["default+model.channels=[8,16,32,64] 32-true"]  # not in default's mean


def test_runs_of_an_edited_config_are_not_averaged(tmp_path, capsys):
    logs = tmp_path / "logs"
    fake_run(logs, 0, [], 0, 0.9960, model={"lr": 0.2, "weight_decay": 0.0005}, data={"data_dir": "data/mnist"})
    fake_run(logs, 1, [], 1, 0.9950, model={"lr": 0.2, "weight_decay": 0.0005}, data={"data_dir": "/elsewhere"})
    fake_run(logs, 2, [], 0, 0.9970, model={"lr": 0.2, "weight_decay": 0.00025})  # configs/default.yaml edited since
    fake_run(logs, 3, [], 0, 0.9980, model={"lr": 0.2})  # saved by a version without the setting
    fake_run(logs, 4, ["configs/fast.yaml"], 0, 0.9940, model={"lr": 0.2, "weight_decay": 0.0005})
    assert main(["--logs", str(logs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:6]] == [
        "default[model.weight_decay=0.0005]", "default[model.weight_decay=0.0005]",
        "default[model.weight_decay=0.00025]", "default[model.weight_decay=?]", "fast"]
    # Seeds and data paths differ too, and split nothing; lr is the same everywhere. Mean, sd, min, n:
    summary = {line.split()[0]: " ".join(line.split()[3:]) for line in lines[8:]}
    expected = {"default[model.weight_decay=0.0005]": "99.55 ± 0.07% 99.50% 99.450% 2 0,1",
                "default[model.weight_decay=0.00025]": "99.70% 99.70% 99.600% 1 0",
                "default[model.weight_decay=?]": "99.80% 99.80% 99.700% 1 0",
                "fast": "99.40% 99.40% 99.300% 1 0"}
    assert summary.keys() == expected.keys()
    assert all(summary[name].startswith(row + " ") for name, row in expected.items())


def test_no_runs_is_one_line(tmp_path, capsys):
    assert main(["--logs", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: no training runs under {tmp_path}/")


def test_cpu_model_tells_generic_cpus_apart():
    block = "processor\t: 0\ncpu family\t: 6\nmodel\t\t: {}\nmodel name\t: {}\n\nprocessor\t: 1\n"
    assert cpu_model(block.format(143, "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz")) == \
        "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"  # a model number already names it
    assert cpu_model(block.format(207, "Intel(R) Xeon(R) Processor")) == "Intel(R) Xeon(R) Processor (family 6 model 207)"
    assert cpu_model(block.format(106, "Intel(R) Xeon(R) Processor @ 2.80GHz")) == \
        "Intel(R) Xeon(R) Processor @ 2.80GHz (family 6 model 106)"
