"""Finding, checking and resuming checkpoints, with one-line answers for every bad one.

A run directory (logs/mnist/version_N) holds config.yaml and checkpoints/{best,last}.ckpt. To
resume, `fit --ckpt_path last` (or the path of a last.ckpt) is rewritten to continue that same run
directory with that run's saved config, so the TensorBoard curves carry on where they stopped.
"""

from __future__ import annotations

import inspect
import pickle
import zipfile
from pathlib import Path

import torch

LOGS = Path("logs")  # where `--ckpt_path last` looks: the default TensorBoardLogger save_dir


class CheckpointError(Exception):
    """A checkpoint the user named cannot be used; the message says why and what to do, in one line."""


def read_checkpoint(path: str | Path) -> dict:
    """Load a Lightning checkpoint as plain data (tensors, numbers, strings) without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found: check the path, or list runs with `ls {LOGS}/*/*/checkpoints`")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty: use another checkpoint of the run, e.g. best.ckpt or last.ckpt")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut-off one loses its directory
        raise CheckpointError(f"{path} is truncated or not a PyTorch checkpoint: "
                              "use another checkpoint of the run, e.g. best.ckpt or last.ckpt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = next((line.strip() for line in str(e).splitlines() if "Unsupported" in line), "")[:160]
        raise CheckpointError(f"{path} holds pickled objects other than plain data, refused for safety ({detail}): "
                              "use a checkpoint written by this project") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path} is corrupted ({str(e).splitlines()[0][:120]}): "
                              "use another checkpoint of the run, e.g. best.ckpt or last.ckpt") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path} is not a Lightning checkpoint of this project (no state_dict/hyper_parameters): "
                              "pass a best.ckpt or last.ckpt written by `python -m src.train fit`")
    return ckpt


def check_hyperparameters(path: str | Path, ckpt: dict, model_class: type) -> None:
    """Every hyperparameter the checkpoint stores is one `model_class` takes: else it is another project's."""
    accepted = set(inspect.signature(model_class).parameters)
    unknown = sorted(k for k in ckpt["hyper_parameters"] if not k.startswith("_") and k not in accepted)
    if unknown:
        raise CheckpointError(f"{path} was written for another model (hyperparameters {', '.join(unknown)} are not "
                              f"{model_class.__name__}'s): pass a checkpoint written by `python -m src.train fit`")


def check_compatible(path: str | Path, ckpt: dict, model: torch.nn.Module) -> None:
    """The checkpoint's weights fit `model`, built from the checkpoint's own hyperparameters, exactly."""
    theirs = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if theirs == ours:
        return
    key = next((k for k in ours if theirs.get(k) != ours[k]), None) or next(k for k in theirs if k not in ours)
    raise CheckpointError(f"{path} holds weights that do not fit the model its hyperparameters describe "
                          f"({key}: {theirs.get(key, 'missing')} in the file, {ours.get(key, 'absent')} in the model): "
                          "it is not an intact checkpoint of this project; use another one")


def primitives(hparams: dict) -> dict:
    """Config values as built-in types: jsonargparse hands over e.g. PositiveFloat, which
    torch.load(weights_only=True) would refuse to unpickle from a checkpoint."""

    def convert(v):
        if isinstance(v, (tuple, list)):
            return type(v)(convert(x) for x in v) if type(v) in (tuple, list) else [convert(x) for x in v]
        for t in (bool, int, float, str):
            if isinstance(v, t):
                return t(v)
        return v

    return {k: convert(v) for k, v in hparams.items()}


def find_last(logs: Path = LOGS) -> Path:
    candidates = sorted(logs.glob("*/*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise CheckpointError(f"no last.ckpt under {logs}/ to resume: start a run with `python -m src.train fit`, "
                              "or pass --ckpt_path PATH")
    return candidates[-1]


def resume_arguments(argv: list[str]) -> list[str]:
    """`fit --ckpt_path last|PATH` -> the same, plus the run's own config and its run directory.

    Arguments the user gave still come last, so they override the saved config.
    """
    if not argv or argv[0] != "fit":
        return argv
    rest, ckpt = _pop_option(argv[1:], "--ckpt_path")
    if ckpt in (None, "null", "best", "hpc"):
        return argv
    path = find_last() if ckpt == "last" else Path(ckpt)  # src.train checks the file itself before using it
    run_dir = path.resolve().parent.parent
    if path.resolve().parent.name != "checkpoints" or not (run_dir / "config.yaml").is_file():
        return ["fit", *rest, "--ckpt_path", str(path)]  # a checkpoint outside a run directory: a new run
    version = run_dir.name.removeprefix("version_")
    logger = "--trainer.logger.init_args."
    return ["fit", "--config", str(run_dir / "config.yaml"), *rest, "--ckpt_path", str(path),
            f"{logger}save_dir", str(run_dir.parent.parent), f"{logger}name", run_dir.parent.name,
            f"{logger}version", version if version.isdigit() else run_dir.name]


def _pop_option(args: list[str], name: str) -> tuple[list[str], str | None]:
    rest, value, i = [], None, 0
    while i < len(args):
        if args[i] == name and i + 1 < len(args):
            value, i = args[i + 1], i + 2
            continue
        if args[i].startswith(name + "="):
            value = args[i].split("=", 1)[1]
        else:
            rest.append(args[i])
        i += 1
    return rest, value
