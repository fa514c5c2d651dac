"""configs/gpu.yaml on a CUDA GPU: bf16 mixed precision and channels-last. Skipped without a GPU."""

import re

import pytest
import torch
import yaml

from tests.conftest import REPO, TINY, run_cli

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_gpu_recipe_trains(tmp_path):
    args = [a for a in TINY if a not in ("--trainer.accelerator", "cpu")]
    proc = run_cli("fit", "--config", str(REPO / "configs" / "gpu.yaml"), *args, cwd=tmp_path)
    assert float(re.search(r"^test accuracy\s+([\d.]+)%", proc.stdout, re.M).group(1)) > 95
    run_dir = tmp_path / "logs" / "mnist" / "version_0"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["precision"] == "bf16-mixed"
    assert yaml.safe_load((run_dir / "environment.yaml").read_text())["gpu"]
