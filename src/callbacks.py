"""Callbacks src/train.py always attaches: predictions CSV, last.ckpt for resuming, and the run's environment record."""

from __future__ import annotations

import csv
import importlib.metadata
import platform
import shlex
import signal
import sys
import threading
from pathlib import Path

import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.trainer.states import TrainerFn

PACKAGES = ("torch", "lightning", "torchmetrics", "torchvision", "jsonargparse", "numpy", "onnx", "onnxruntime", "tensorboard")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's marketing name (e.g. "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"), for run records.
    Virtual machines often report a generic name ("Intel(R) Xeon(R) Processor") for CPUs that compute
    differently (Ice Lake, Sapphire Rapids, Emerald Rapids): then the family and model numbers follow it."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        cpuinfo = ""
    first = cpuinfo.split("\n\n")[0].splitlines()  # the first processor's block
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first)}
    name = info.get("model name") or platform.processor() or platform.machine()
    if not any(c.isdigit() for c in name.split("@")[0]) and "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']} model {info['model']})"
    return name


def relative(path) -> str:
    """`path` relative to the working directory when it lies below it, for short, copy-pasteable output."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


class PredictionCSV(BasePredictionWriter):
    """predict: writes predictions.csv (index into the test set, what was read, its probability) to the run dir."""

    def __init__(self):
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(self, trainer: Trainer, pl_module: LightningModule, predictions, batch_indices) -> None:
        rank = f"-rank{trainer.global_rank}" if trainer.world_size > 1 else ""  # each DDP rank predicts a shard
        path = Path(trainer.log_dir or ".") / f"predictions{rank}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            # predict_step's columns: the digit net's "digit", "probability"; the line reader's "number", "probability",
            # "truth" and the lines' own "index" (its batches are whole lines, not a sampler's indices).
            columns = [k for k in predictions[0] if k != "index"] if predictions else ["digit", "probability"]
            out.writerow(["index", *columns])
            for n, batch in enumerate(predictions):
                indices = batch["index"] if "index" in batch else batch_indices[0][n]
                values = [v.tolist() if torch.is_tensor(v) else v for v in (indices, *(batch[k] for k in columns))]
                for row in zip(*values):
                    out.writerow([f"{v:.6f}" if isinstance(v, float) else v for v in row])
        what = "test lines" if predictions and "number" in predictions[0] else "test images"
        print(f"predictions: {relative(path)} ({sum(len(b['probability']) for b in predictions)} {what})")


class LastCheckpoint(Callback):
    """checkpoints/last.ckpt, the point to resume from: after every epoch, every N training steps, and on Ctrl-C.

    Written with trainer.save_checkpoint, which saves to a temporary file and renames it: a kill at
    any moment leaves the previous last.ckpt whole. Every save falls between two training steps, where
    the weights, their average, the optimiser, the schedule, the data position and the random states
    all agree, so a resume continues exactly: Ctrl-C during a step lets that step finish first (a
    second Ctrl-C stops at once, and then the step under way may be half done in last.ckpt).
    """

    def __init__(self, every_n_train_steps: int = 100):
        """
        Args:
            every_n_train_steps: also save within an epoch every this many optimizer steps; 0 for epoch ends only.
        """
        self.every_n_train_steps = every_n_train_steps
        self._hold = False  # Ctrl-C waits for the end of the step under way
        self._held = False  # ... and one is waiting
        self._sigint = None  # the SIGINT handler before fit, while ours is installed

    def path(self, trainer: Trainer) -> Path | None:
        ckpt = trainer.checkpoint_callback  # its dirpath is the run's checkpoints/ directory
        return Path(ckpt.dirpath) / "last.ckpt" if ckpt is not None and ckpt.dirpath else None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():  # where Python runs signal handlers
            self._sigint, self._hold, self._announce = signal.signal(signal.SIGINT, self._on_sigint), True, trainer.is_global_zero

    def _on_sigint(self, signum, frame) -> None:
        if not self._hold or self._held:
            raise KeyboardInterrupt
        self._held = True
        if self._announce:
            print("\nstopping after this training step (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def _stop_if_asked(self) -> None:
        if self._held:
            self._held = False
            raise KeyboardInterrupt  # Lightning calls on_exception, which saves last.ckpt

    def _restore_sigint(self) -> None:
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint, self._hold, self._held = None, False, False

    def on_train_batch_end(self, trainer: Trainer, *args) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0 and self.path(trainer):
            trainer.save_checkpoint(self.path(trainer), weights_only=False)
        self._stop_if_asked()

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking and self._sigint is not None:
            self._hold = False  # validation changes nothing a resume needs, and it is run again
            self._stop_if_asked()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking and self._sigint is not None:
            self._hold = True

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Runs after validation and after ModelCheckpoint has updated best.ckpt, so the saved
        # state knows the best score so far and a resumed run keeps comparing against it.
        if self.path(trainer):
            trainer.save_checkpoint(self.path(trainer), weights_only=False)
        self._stop_if_asked()

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore_sigint()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt):  # after Ctrl-C, Lightning ignores SIGINT until it exits
            self._restore_sigint()
        path = self.path(trainer)
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn != TrainerFn.FITTING or path is None:
            return
        trainer.save_checkpoint(path, weights_only=False)
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
        argv = sys.argv[1:]
        record = {
            "command": shlex.join([Path(sys.executable).name, "-m", "src.train", *argv]),
            # The recipe files layered over default.yaml, as given (a resume adds the run's config.yaml).
            "configs": [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
                       + [a.split("=", 1)[1] for a in argv if a.startswith("--config=")],
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu": cpu_model(),
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
