"""Train, validate, test and predict from the command line (LightningCLI over configs/*.yaml).

    python -m src.train fit                                   # the default recipe, configs/default.yaml
    python -m src.train fit --config configs/fast.yaml        # a recipe, layered over default.yaml
    python -m src.train fit --trainer.max_epochs 3 --data.batch_size 512
    python -m src.train fit --print_config                    # the fully resolved config
    python -m src.train fit --ckpt_path last                  # resume the latest run where it stopped
    python -m src.train test                                  # best.ckpt of the latest run (it says which)
    python -m src.train validate --ckpt_path last             # ... or its last.ckpt
    python -m src.train predict --ckpt_path logs/mnist/version_0/checkpoints/best.ckpt

    python -m src.train fit --config configs/lines.yaml       # the line reader (task `lines`, src/line_module.py)

`fit` ends by testing the best checkpoint (by val/acc) on the official 10k test set and printing a
summary (the line reader: on lines of MNIST test digits, a line right when all its digits are). Each
command writes a run directory logs/mnist/version_N (logs/lines/version_N) with the TensorBoard events,
config.yaml and, for fit, environment.yaml, results.yaml and checkpoints/{best,last}.ckpt; predict
writes predictions.csv. `validate`, `test` and `predict` evaluate a trained checkpoint or refuse.
Mistakes end in one `error:` line and a non-zero exit; add --debug for a traceback.
"""

import time

_START = time.monotonic()  # wall time as the user sees it, imports included

import errno
import inspect
import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from src.callbacks import LastCheckpoint, PredictionCSV, RunRecord, cpu_model, relative
from src.checkpoints import (CheckpointError, check_compatible, check_hyperparameters, checkpoint_arguments,
                             is_line_reader, new_run_command, read_checkpoint)
from src.data import DataError, MNISTDataModule
from src.line_data import LinesDataModule
from src.line_module import LineReader
from src.module import MNISTClassifier, NonFiniteLossError

SUBCOMMANDS = ("fit", "validate", "test", "predict")
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIGS / "default.yaml"
# task -> (LightningModule, LightningDataModule, the config every other one is layered over). The task is a key
# of the config (`task: lines`), so a run's config.yaml names it for a resume, a test or a predict.
TASKS = {
    "digits": (MNISTClassifier, MNISTDataModule, DEFAULT_CONFIG),
    "lines": (LineReader, LinesDataModule, CONFIGS / "lines.yaml"),
}

# Batches are single in-memory gathers (src/data.py), so worker processes would only slow them down.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")  # inside Lightning, harmless
warnings.filterwarnings("ignore", ".*args parameter is intended to run from within Python.*")  # main() rewrites argv
warnings.filterwarnings("ignore", ".*all_gather is deprecated.*")  # inside Lightning's DDP all_gather
# Lightning looks for state_dict() on the DataLoader; the DataModule's own state_dict saves the position instead.
warnings.filterwarnings("ignore", ".*your dataloader is not resumable.*")
# The line reader's batches are whole lines (batch_size=None); its predictions carry their own indices.
warnings.filterwarnings("ignore", ".*Couldn't infer the batch indices.*")


class UserError(Exception):
    """Something the user can fix; printed as one `error:` line."""


class OneLineErrors(LightningArgumentParser):
    """Config mistakes (unknown key, wrong type) in one line instead of usage + multi-line detail."""

    task = "digits"  # whose keys the hint lists (main() subclasses this for the task it runs)

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:  # jsonargparse is probing internally and will handle it
            return super().error(message, ex)
        detail = " ".join(message.split())
        sub = next((a for a in sys.argv[1:2] if a in SUBCOMMANDS), "fit")
        config = " --config configs/lines.yaml" if self.task == "lines" else ""
        sys.exit(f"error: {detail[:400]} (valid keys and types: python -m src.train {sub}{config} --help)")


class CLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # Always attached, configured under these keys in the YAML (or --checkpoint.*, --last_checkpoint.*).
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_argument("--task", choices=tuple(TASKS), default="digits",
                            help="what to train: digits (one per 28x28 image) or lines (a line of digits, read with CTC)")

    def _parse_ckpt_path(self) -> None:
        # LightningCLI builds the model from the checkpoint's own hyperparameters; check them first,
        # so that a bad file is named in one line instead of failing deep inside torch.load.
        sub = self.config.get("subcommand")
        path = self.config[sub].get("ckpt_path") if sub else None
        self.checkpoint = None
        if path and path not in ("best", "last", "hpc"):
            self.checkpoint = read_checkpoint(path)
            check_hyperparameters(path, self.checkpoint, self.model_class)
        super()._parse_ckpt_path()
        if self.checkpoint is not None:
            # A checkpoint saved before a model option existed (model.pool_first) was trained without
            # it: build its model with the option's default, the old behaviour, not with the config's value.
            saved = self.checkpoint["hyper_parameters"]
            for name, param in inspect.signature(self.model_class.__init__).parameters.items():
                if name != "self" and name not in saved and param.default is not inspect.Parameter.empty:
                    self.config[sub]["model"][name] = param.default

    def before_instantiate_classes(self) -> None:
        sub = self.config.get("subcommand")
        trainer = self.config[sub]["trainer"] if sub else None
        if trainer is None or not str(trainer.get("precision")).startswith("bf16"):
            return
        on_cpu = trainer.get("accelerator") == "cpu" or (trainer.get("accelerator") == "auto" and not torch.cuda.is_available())
        if on_cpu and not cpu_has_fast_bf16():
            # Without AMX or AVX512-BF16, bf16 is emulated and slower than fp32, at no gain in accuracy.
            trainer["precision"] = "32-true"  # what config.yaml records is what ran
            if os.environ.get("LOCAL_RANK", "0") == "0":
                print(f"note: {cpu_model()} has no AMX or AVX512-BF16, where bf16 is slower than fp32: training in "
                      "32-true instead (pass --trainer.precision 32-true to skip this note)", file=sys.stderr, flush=True)

    def _run_subcommand(self, subcommand: str) -> None:
        if self.checkpoint is not None:  # the model is built by now: its shapes must match the weights
            path = self.config_init[subcommand]["ckpt_path"]
            check_compatible(path, self.checkpoint, self.model)
            if subcommand != "fit" and os.environ.get("LOCAL_RANK", "0") == "0":
                step = f"epoch {self.checkpoint.get('epoch')}, step {self.checkpoint.get('global_step')}"
                print(f"checkpoint  {relative(path)}  ({step})", flush=True)
            self.checkpoint = None  # Lightning loads it again for itself; don't hold a second copy
        if self.trainer.logger is not None:
            _check_writable(Path(self.trainer.logger.save_dir))
        # Load (and verify) the data now, before Lightning opens a run directory: a data error must
        # not leave an empty run behind. Lightning's own later setup() call finds it done.
        if os.environ.get("LOCAL_RANK", "0") == "0":  # download once per machine, as Lightning would
            self.datamodule.prepare_data()
        self.datamodule.setup(subcommand)
        try:
            super()._run_subcommand(subcommand)
        except NonFiniteLossError as e:
            last = Path(self.trainer.checkpoint_callback.dirpath or "") / "last.ckpt"
            kept = f"the last good checkpoint is {relative(last)}" if last.is_file() else "no checkpoint was written"
            # A lower rate changes the schedule, so it is a new run from this run's config, not a resume.
            retry = (new_run_command(relative(self.trainer.log_dir), "--model.lr", f"{self.model.hparams.lr / 2:g}")
                     if self.trainer.log_dir and Path(self.trainer.log_dir, "config.yaml").is_file()
                     else f"python -m src.train fit ... --model.lr {self.model.hparams.lr / 2:g}")
            raise UserError(f"{e}; training stopped and {kept}: start again with half the learning rate: {retry}") from None
        except RuntimeError as e:  # torch.OutOfMemoryError is a RuntimeError too
            if not _is_out_of_memory(e):
                raise
            # Lightning has reset the trainer's stage by now: the failing step's name says which batch it was.
            steps = {frame.name for frame in traceback.extract_tb(e.__traceback__)}
            training = not steps & {"validation_step", "test_step", "predict_step"}
            key = "batch_size" if training else "eval_batch_size"
            raise UserError(f"out of memory {'training' if training else 'evaluating'} with --data.{key} "
                            f"{getattr(self.datamodule, key)} per device: lower --data.{key}") from None

    def before_fit(self) -> None:
        self.fit_start = time.monotonic()

    def after_fit(self) -> None:
        fit_seconds = time.monotonic() - self.fit_start
        trainer, ckpt = self.trainer, self.trainer.checkpoint_callback
        best = ckpt.best_model_path if ckpt is not None else ""
        # Test the checkpoint that won on validation, not whatever the last epoch left in memory.
        results = trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None, verbose=False)
        test_acc = results[0]["test/acc"] if results else float("nan")
        best_val = float(ckpt.best_model_score) if best and ckpt.best_model_score is not None else float("nan")
        if trainer.logger is not None:
            # The hparams tab: hyperparameters next to the metrics they produced.
            hparams = {k: v for k, v in {**self.model.hparams, **self.datamodule.hparams}.items() if not k.startswith("_")}
            hparams |= {k: getattr(trainer, k) for k in ("max_epochs", "world_size")}
            hparams |= {"precision": trainer.precision, "seed": self.config.fit.get("seed_everything")}
            trainer.logger.log_hyperparams(hparams, {"hp/test_acc": test_acc, "hp/best_val_acc": best_val})
            # trainer.test() closed the event writer; these land in a fresh one nobody closes, and a
            # daemon thread would drop them at exit: write them out now.
            trainer.logger.finalize("success")
        run_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if trainer.is_global_zero and run_dir:
            # What `python -m src.runs` tabulates; a run without this file was interrupted or never tested.
            results = {
                "test_acc": test_acc, "best_val_acc": best_val, "fit_seconds": round(fit_seconds, 2),
                "epochs": trainer.current_epoch, "global_step": trainer.global_step, "precision": str(trainer.precision),
                "seed": self.config.fit.get("seed_everything"), "world_size": trainer.world_size,
                "resumed": bool(self.config.fit.get("ckpt_path")), "checkpoint": relative(best) if best else None,
            }
            Path(run_dir, "results.yaml").write_text(yaml.safe_dump(results, sort_keys=False))
        if trainer.is_global_zero:
            rows = [
                ("test accuracy", f"{test_acc:.2%}  ({self.datamodule.test_description}, best checkpoint)"),
                ("best val accuracy", f"{best_val:.2%}"),
                ("checkpoint", relative(best) if best else "none written (fast_dev_run or no validation)"),
                ("run directory", relative(run_dir) if run_dir else "none (no logger)"),
                ("fit time", f"{_duration(fit_seconds)}  (training and validation, {trainer.current_epoch} epoch{'s' * (trainer.current_epoch != 1)})"),
                ("wall time", f"{_duration(time.monotonic() - _START)}  (the whole command, imports and test included)"),
            ]
            if run_dir:
                rows.append(("view it with", f"tensorboard --logdir {relative(Path(run_dir).parent.parent)}"))
            width = max(len(k) for k, _ in rows)
            print("\n".join(f"{k:<{width}}  {v}" for k, v in rows), flush=True)


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise UserError(f"cannot write the log directory {directory} ({e.strerror or e}): "
                        "pass a writable one with --trainer.logger.init_args.save_dir DIR") from None


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX512-BF16 on x86; assumed on other machines)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True  # not Linux: leave the choice to the user
    if " avx512f" not in flags and " avx2" not in flags:
        return True  # not an x86 CPU (e.g. ARM with its own bf16 instructions)
    return any(f" {flag}" in flags for flag in ("amx_bf16", "avx512_bf16"))


def _is_out_of_memory(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e) or "out of memory" in str(e)


def _duration(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.1f} s"


def task_of(args: list[str]) -> str:
    """The task the command line asks for: the last `--task`, else the last config file that names one (a run's
    config.yaml among them), else the run directory's config.yaml of --ckpt_path; "digits" when none does."""
    task, configs, ckpt = None, [], None
    for i, a in enumerate(args):
        key, eq, value = a.partition("=")
        value = value if eq else (args[i + 1] if i + 1 < len(args) else "")
        if key == "--task":
            task = value
        elif key == "--config":
            configs.append(value)
        elif key == "--ckpt_path":
            ckpt = value
    if task is None and ckpt and Path(ckpt).parent.name == "checkpoints":
        configs.insert(0, str(Path(ckpt).parent.parent / "config.yaml"))
    for config in configs if task is None else ():
        try:
            named = (yaml.safe_load(Path(config).read_text()) or {}).get("task")
        except (OSError, yaml.YAMLError, AttributeError):
            continue  # LightningCLI names the unreadable file
        task = named if isinstance(named, str) else task
    if task is None and ckpt and Path(ckpt).is_file():  # a checkpoint outside its run directory: its weights tell
        try:
            task = "lines" if is_line_reader(read_checkpoint(ckpt)) else None
        except CheckpointError:
            pass  # named in one line by the CLI's own check
    return task if task in TASKS else "digits"  # an unknown task: LightningCLI's one-line error lists them


def main(args: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        args = checkpoint_arguments(args)
        task = task_of(args)
        model_class, datamodule_class, config = TASKS[task]
        CLI(
            model_class,
            datamodule_class,
            parser_class=type("OneLineErrors", (OneLineErrors,), {"task": task}),
            parser_kwargs={cmd: {"default_config_files": [str(config)]} for cmd in SUBCOMMANDS},
            trainer_defaults={"callbacks": [PredictionCSV(), RunRecord()]},
            save_config_kwargs={"overwrite": True},  # a resumed run rewrites the same config.yaml
            auto_configure_optimizers=False,  # the module owns its optimiser and schedule
            args=args,
        )
    except (UserError, DataError, CheckpointError) as e:
        if debug:
            raise
        sys.exit(f"error: {e}")
    except OSError as e:
        if debug or e.errno not in (errno.EACCES, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        sys.exit(f"error: cannot write {e.filename or 'a file'} ({e.strerror}): free some space or choose another directory")
    finally:
        # Close the DDP process group on every rank and every path (success, error, Ctrl-C): a gloo group
        # left to the interpreter's exit can abort the process ("terminate called without an active exception").
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
