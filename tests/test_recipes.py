"""Slow: the default recipe in full, as a user runs it, and the shipped model on rendered digits.

    python -m pytest -m slow        # about 5 minutes on 2 CPU cores
"""

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from src.data import load_mnist
from tests.conftest import DATA, REPO, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("default")
    start = time.monotonic()
    proc = run_cli("fit", "--data.data_dir", str(DATA), cwd=work, timeout=1800)
    return {"work": work, "stdout": proc.stdout, "seconds": time.monotonic() - start}


def test_default_recipe_accuracy_and_time(default_run):
    acc = float(re.search(r"^test accuracy\s+([\d.]+)%", default_run["stdout"], re.M).group(1))
    print(f"\ndefault recipe: test accuracy {acc:.2f}%, {default_run['seconds']:.0f} s")
    assert acc >= 99.60
    assert default_run["seconds"] <= 300


def test_rendered_test_digits(default_run, tmp_path):
    """The edge predictor on all 10,000 test digits drawn dark on white paper, resized, as RGB PNG files."""
    model = default_run["work"] / "artifacts" / "mnist.onnx"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "export", "--out", str(model), "--data-dir", str(DATA)],
                   cwd=default_run["work"], env=env, check=True, capture_output=True)
    images, labels = load_mnist(DATA, train=False)
    sizes = np.random.default_rng(0).integers(40, 200, len(labels))
    for i, (digit, size) in enumerate(zip(images.numpy(), sizes)):
        paper = Image.fromarray(255 - digit).resize((int(size), int(size)), Image.BICUBIC)
        paper.convert("RGB").save(tmp_path / f"{i:05d}.png")
    proc = subprocess.run([sys.executable, "-m", "export.predict", "--model", str(model), str(tmp_path)],
                          cwd=REPO, check=True, capture_output=True, text=True)
    predicted = [int(line.split("\t")[1]) for line in proc.stdout.splitlines()]
    acc = float(np.mean(np.array(predicted) == labels.numpy()))
    print(f"\npredict.py on 10,000 rendered test digits (dark on white, 40-199 px, RGB PNG): {acc:.2%}")
    assert acc >= 0.99
