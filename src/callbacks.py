"""Callbacks src/train.py always attaches: predictions CSV, Ctrl-C checkpoint, and the run's environment record."""

from __future__ import annotations

import csv
import importlib.metadata
import platform
import sys
from pathlib import Path

import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.trainer.states import TrainerFn

PACKAGES = ("torch", "lightning", "torchmetrics", "torchvision", "jsonargparse", "numpy", "onnx", "onnxruntime", "tensorboard")


def relative(path) -> str:
    """`path` relative to the working directory when it lies below it, for short, copy-pasteable output."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


class PredictionCSV(BasePredictionWriter):
    """predict: writes predictions.csv (index into the test set, predicted digit, its probability) to the run dir."""

    def __init__(self):
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(self, trainer: Trainer, pl_module: LightningModule, predictions, batch_indices) -> None:
        rank = f"-rank{trainer.global_rank}" if trainer.world_size > 1 else ""  # each DDP rank predicts a shard
        path = Path(trainer.log_dir or ".") / f"predictions{rank}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["index", "digit", "probability"])
            for batch, indices in zip(predictions, batch_indices[0]):
                for i, d, p in zip(indices, batch["digit"].tolist(), batch["probability"].tolist()):
                    out.writerow([i, d, f"{p:.6f}"])
        print(f"predictions: {relative(path)} ({sum(len(b['digit']) for b in predictions)} test images)")


class SaveOnInterrupt(Callback):
    """Ctrl-C during fit: write checkpoints/last.ckpt at once and print the command that resumes from it."""

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn != TrainerFn.FITTING:
            return
        ckpt = trainer.checkpoint_callback
        if ckpt is None or ckpt.dirpath is None:
            return
        path = Path(ckpt.dirpath) / "last.ckpt"
        trainer.save_checkpoint(path)  # written to a temporary file, then renamed: never half-written
        if trainer.is_global_zero:
            print(f"\ninterrupted at epoch {trainer.current_epoch}, step {trainer.global_step}; saved {relative(path)}\n"
                  f"resume with: python -m src.train fit --ckpt_path {relative(path)}", file=sys.stderr, flush=True)


class RunRecord(Callback):
    """Writes environment.yaml beside config.yaml: command, package versions and hardware, for reproducing a run."""

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not trainer.is_global_zero or log_dir is None:
            return
        versions = {}
        for name in PACKAGES:
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                pass
        record = {
            "command": " ".join([Path(sys.executable).name, "-m", "src.train", *sys.argv[1:]]),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "world_size": trainer.world_size,
            "packages": versions,
        }
        run_dir = Path(log_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        path, n = run_dir / "environment.yaml", 0
        while path.exists():  # a resumed run keeps the record of each session
            n += 1
            path = run_dir / f"environment-resume{n}.yaml"
        path.write_text(yaml.safe_dump(record, sort_keys=False))
