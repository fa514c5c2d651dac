"""Slow: the recipes in full over their seeds, as a user runs them, and the shipped model on rendered digits.

    python -m pytest -m slow        # default x 5 seeds, fast x 5, best x 3: by the fit times in docs/results.md
                                    # about half an hour on AMD Zen 5, over an hour on CPUs without bf16

The bounds are the recipe targets of issue 25 (docs/results.md, "Targets and measured figures, per CPU
class"): accuracy on every CPU; the fit times only on the CPU class they are set for, printed elsewhere.
"""

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from src.data import load_mnist
from tests.conftest import DATA, REPO, run_cli

pytestmark = pytest.mark.slow

# recipe: (seeds, lowest mean test accuracy %, lowest single-seed test accuracy %)
TARGETS = {
    # The default trains with not-digits since 2026-12-06 (for the number reader): 99.574% mean on Zen 4, where the
    # recipe without them gave 99.600% in the same session, so its mean bound moved from issue 25's 99.58% to 99.57%.
    "default": (range(5), 99.57, 99.50),
    "fast": (range(5), 99.50, 99.40),
    "best": (range(3), 99.65, 99.60),
}


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


# recipe: (CPU flag the bound is set for, the most seconds of fit time any seed may take). Elsewhere the
# times are printed, not bounded: AVX2-only CPUs have half the vector width (docs/results.md).
FIT_SECONDS = {"default": ("avx512f", 180), "fast": ("amx_tile", 50)}


def train(recipe: str, work: Path) -> list[dict]:
    """The recipe once per seed, in one work directory (logs/mnist/version_<i> for the i-th seed)."""
    seeds = TARGETS[recipe][0]
    config = [] if recipe == "default" else ["--config", str(REPO / "configs" / f"{recipe}.yaml")]
    runs = []
    for i, seed in enumerate(seeds):
        start = time.monotonic()
        proc = run_cli("fit", *config, "--data.data_dir", str(DATA), "--seed_everything", str(seed), cwd=work,
                       timeout=3600)
        acc = float(re.search(r"^test accuracy\s+([\d.]+)%", proc.stdout, re.M).group(1))
        results = yaml.safe_load((work / "logs" / "mnist" / f"version_{i}" / "results.yaml").read_text())
        runs.append({"seed": seed, "acc": acc, "fit": results["fit_seconds"], "wall": time.monotonic() - start})
    return runs


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("default")
    return {"work": work, "runs": train("default", work)}


@pytest.mark.parametrize("recipe", ["default", "fast", "best"])
def test_recipe_accuracy_over_seeds_and_time(recipe, request, tmp_path_factory):
    runs = request.getfixturevalue("default_runs")["runs"] if recipe == "default" else train(recipe, tmp_path_factory.mktemp(recipe))
    accs = [r["acc"] for r in runs]
    print(f"\n{recipe}: " + ", ".join(f"seed {r['seed']} {r['acc']:.2f}% (fit {r['fit']:.0f} s, command {r['wall']:.0f} s)" for r in runs))
    print(f"mean {statistics.fmean(accs):.3f}%, sd {statistics.stdev(accs):.3f}, min {min(accs):.2f}%")
    _, mean_target, worst_target = TARGETS[recipe]
    assert statistics.fmean(accs) >= mean_target and min(accs) >= worst_target, (recipe, accs)
    if recipe in FIT_SECONDS:
        flag, seconds = FIT_SECONDS[recipe]
        if flag in cpu_flags():
            assert max(r["fit"] for r in runs) <= seconds, (recipe, [r["fit"] for r in runs])
        else:
            print(f"{recipe}: no {flag} on this CPU, fit times printed, not bounded")


def test_rendered_test_digits(default_runs, tmp_path):
    """The edge predictor on all 10,000 test digits drawn dark on white paper, resized, as RGB PNG files."""
    work = default_runs["work"]
    model = work / "artifacts" / "mnist.onnx"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ckpt = work / "logs" / "mnist" / "version_0" / "checkpoints" / "best.ckpt"  # seed 0
    subprocess.run([sys.executable, "-m", "export", "--ckpt", str(ckpt), "--out", str(model), "--data-dir", str(DATA)],
                   cwd=work, env=env, check=True, capture_output=True)
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
