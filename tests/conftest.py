"""Shared fixtures: the repository paths and one tiny training run reused by the CLI and export tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "mnist"
# 100 steps of a small net on CPU: ~98% test accuracy in seconds, enough to check every output.
TINY = [
    "--trainer.accelerator", "cpu",
    "--trainer.max_epochs", "1",
    "--trainer.limit_train_batches", "100",
    "--trainer.limit_val_batches", "2",
    "--trainer.log_every_n_steps", "10",
    "--model.channels", "[16, 32, 64]",
    "--model.hidden", "32",
    "--data.data_dir", str(DATA),
]

def timed_on_one_core(model, photo, reading: str) -> tuple[str, float]:
    """`reading` (an expression of clf and path, e.g. "clf.read(path)['number']") on one core, one thread, in a
    fresh process: (its value printed, the best of 3 timed runs after a warm-up, seconds). A shared machine
    only slows runs down, so the best of 3 is the honest figure."""
    code = ("import sys, time\nfrom export.predict import DigitClassifier\n"
            "clf, path = DigitClassifier(sys.argv[1], threads=1), sys.argv[2]\n" + reading + "\nts = []\n"
            "for _ in range(3):\n    t = time.perf_counter(); r = " + reading + "; ts.append(time.perf_counter() - t)\n"
            "print(r, min(ts))")
    cmd = [sys.executable, "-c", code, str(model), str(photo)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    value, seconds = proc.stdout.split()
    return value, float(seconds)



def run_cli(*args: str, cwd: Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m src.train ...` the way a user does, in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """`fit` on a small subset in a fresh directory; returns its paths and output."""
    work = tmp_path_factory.mktemp("run")
    proc = run_cli("fit", *TINY, cwd=work)
    run_dir = work / "logs" / "mnist" / "version_0"
    return {"work": work, "run_dir": run_dir, "best": run_dir / "checkpoints" / "best.ckpt",
            "last": run_dir / "checkpoints" / "last.ckpt", "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.fixture(scope="session")
def exported(tiny_run, tmp_path_factory) -> dict:
    """`python -m export --int8` of the tiny run's best checkpoint; returns the sidecar and paths."""
    from export.__main__ import export

    out = tmp_path_factory.mktemp("export") / "mnist.onnx"
    lines = []
    sidecar = export(tiny_run["best"], out, int8=True, data_dir=str(DATA), log=lines.append)
    return {"onnx": out, "int8": out.with_suffix(".int8.onnx"), "json": out.with_suffix(".json"),
            "sidecar": sidecar, "log": lines, "ckpt": tiny_run["best"]}


@pytest.fixture(scope="session")
def exported_model(exported) -> Path:
    """A verified fp32 ONNX file of a small trained model (~98% accurate)."""
    return exported["onnx"]


# The fast recipe cut to 3 epochs, in fp32 so it runs alike on every CPU, with the default's not-digits
# (the number reader's cuts are tuned on a model trained with them): 99.38% test accuracy, a fit of 1 min 41 s
# on the 2-core Zen 4 VM. For the tests that need a classifier good enough to judge preprocessing (photos,
# numbers, the browser page), not only plumbing.
GOOD = [
    "--config", str(REPO / "configs" / "fast.yaml"),
    "--trainer.accelerator", "cpu",
    "--trainer.precision", "32-true",
    "--trainer.max_epochs", "3",
    "--data.not_digits", "0.1",
    "--data.data_dir", str(DATA),
]


@pytest.fixture(scope="session")
def good_model(tmp_path_factory) -> Path:
    """A verified fp32 ONNX file (with its INT8 copy and sidecar) of a ~99.2% accurate model."""
    from export.__main__ import export

    work = tmp_path_factory.mktemp("good")
    run_cli("fit", *GOOD, cwd=work, timeout=1800)
    out = work / "artifacts" / "mnist.onnx"
    export(work / "logs" / "mnist" / "version_0" / "checkpoints" / "best.ckpt", out, int8=True,
           data_dir=str(DATA), log=lambda *_: None)
    return out
