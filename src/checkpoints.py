"""Finding, checking and resuming checkpoints, with one-line answers for every bad one.

A run directory (logs/mnist/version_N) holds config.yaml and checkpoints/{best,last}.ckpt. To
resume, `fit --ckpt_path last` (or the path of a last.ckpt) is rewritten to continue that same run
directory with that run's saved config, so the TensorBoard curves carry on where they stopped.
`validate`, `test` and `predict` always name the checkpoint they evaluate: never random weights.
"""

from __future__ import annotations

import inspect
import pickle
import zipfile
from pathlib import Path

import torch
import yaml

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


def is_line_reader(ckpt: dict) -> bool:
    """Whether the checkpoint holds src.line_model.LineNet's weights (task `lines`), not the digit classifier's."""
    return any(k.startswith("net.columns.") for k in ckpt.get("state_dict", {}))  # LineNet's 1-D part


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


def find_latest(name: str, logs: Path = LOGS) -> Path:
    """The newest `name` (best.ckpt or last.ckpt) of any run under `logs`, by modification time."""
    candidates = sorted(logs.glob(f"*/*/checkpoints/{name}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        todo = "resume" if name == "last.ckpt" else "evaluate"
        raise CheckpointError(f"no {name} under {logs}/ to {todo}: start a run with `python -m src.train fit`, "
                              "or pass --ckpt_path PATH")
    return candidates[-1]


# What may change when a run resumes: settings that do not touch what is trained or how. Any other
# override that differs from the run's saved config is refused, because the checkpoint restores the
# weights, optimiser state and learning-rate schedule planned with the saved values; LightningCLI
# would also silently replace every --model.* value with the checkpoint's own.
RESUME_MAY_CHANGE = {
    "data.data_dir", "data.download", "data.eval_batch_size", "data.workers", "trainer.accelerator", "trainer.enable_progress_bar",
    "trainer.enable_model_summary", "trainer.log_every_n_steps", "last_checkpoint.every_n_train_steps",
    "trainer.logger.init_args.save_dir",  # where to look for the run; the run's own directory is kept
}


def checkpoint_arguments(argv: list[str]) -> list[str]:
    """Make --ckpt_path explicit before LightningCLI sees it.

    - `fit --ckpt_path last|PATH` resumes: the run's own config and run directory are added, and an
      override that would change the planned run is refused (CheckpointError).
    - `validate|test|predict` evaluate a trained model or refuse: without --ckpt_path, or with `best`,
      best.ckpt of the latest run; with `last`, its last.ckpt.
    """
    if not argv or any(a in ("-h", "--help", "--print_config") or a.startswith("--print_config=") for a in argv):
        return argv
    sub, (rest, ckpt) = argv[0], _pop_option(argv[1:], "--ckpt_path")
    logs = Path(_pop_option(rest, "--trainer.logger.init_args.save_dir")[1] or LOGS)
    if sub in ("validate", "test", "predict"):
        path = find_latest("last.ckpt" if ckpt == "last" else "best.ckpt", logs) if ckpt in (None, "null", "best", "last") else ckpt
        return [sub, *rest, "--ckpt_path", str(path)]
    if sub != "fit" or ckpt in (None, "null", "best", "hpc"):
        return argv
    path = find_latest("last.ckpt", logs) if ckpt == "last" else Path(ckpt)
    run_dir = path.resolve().parent.parent
    in_run = path.resolve().parent.name == "checkpoints" and (run_dir / "config.yaml").is_file()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) if in_run else {}
    if path.is_file():  # else src.train names the missing file
        saved["model"] = {**saved.get("model", {}), **read_checkpoint(path)["hyper_parameters"]}
    _refuse_changes(rest, saved, run_dir if in_run else None)
    if not in_run:
        return ["fit", *rest, "--ckpt_path", str(path)]  # a checkpoint outside a run directory: a new run
    version = run_dir.name.removeprefix("version_")
    logger = "--trainer.logger.init_args."
    # The run's save_dir as it was written, when it still names this directory: ModelCheckpoint keeps its best
    # score across a resume only if its directory reads the same (else a worse epoch could replace best.ckpt).
    node = saved
    for key in ("trainer", "logger", "init_args", "save_dir"):
        node = node.get(key) if isinstance(node, dict) else None
    save_dir = str(node) if isinstance(node, str) and Path(node).resolve() == run_dir.parent.parent else str(run_dir.parent.parent)
    return ["fit", "--config", str(run_dir / "config.yaml"), *rest, "--ckpt_path", str(path),
            f"{logger}save_dir", save_dir, f"{logger}name", run_dir.parent.name,
            f"{logger}version", version if version.isdigit() else run_dir.name]


def new_run_command(run_dir: Path, *overrides: str) -> str:
    """The command that starts a fresh run with `run_dir`'s saved config and `overrides` on top."""
    config = Path(run_dir) / "config.yaml"
    return " ".join(["python -m src.train fit --config", str(config), "--trainer.logger.init_args.version null", *overrides])


def _refuse_changes(args: list[str], saved: dict, run_dir: Path | None) -> None:
    for key, value in _overrides(args):
        if key == "config":
            raise CheckpointError(f"--config {value}: a resumed run keeps its own config "
                                  f"({run_dir / 'config.yaml' if run_dir else 'saved in the checkpoint'}); "
                                  "pass single --key value overrides, or start a new run")
        if key in RESUME_MAY_CHANGE:
            continue
        node, found = saved, True
        for part in key.split("."):
            found = isinstance(node, dict) and part in node
            node = node.get(part) if found else None
        if not found or _same(node, value):
            continue  # the same as saved; or nothing saved to compare with (the later checks judge the file)
        why = ("the model and its optimiser state come from the checkpoint" if key.startswith("model.") else
               "the one-cycle learning-rate schedule was planned for the saved number of steps"
               if key in ("trainer.max_epochs", "trainer.max_steps", "data.batch_size", "trainer.devices",
                          "trainer.num_nodes", "trainer.limit_train_batches", "trainer.accumulate_grad_batches")
               else "the resumed run must train as its saved config says")
        hint = f": {new_run_command(run_dir, f'--{key}', value)}" if run_dir else ""
        raise CheckpointError(f"--{key} cannot change when resuming ({why}, {node!r} there); "
                              f"resume without it, or start a new run with it{hint}")


def _same(saved, given: str) -> bool:
    try:
        value = yaml.safe_load(given)
    except yaml.YAMLError:
        return False
    if isinstance(saved, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(saved) == list(value)
    return saved == value or str(saved) == str(value)


def _overrides(args: list[str]) -> list[tuple[str, str]]:
    """`--a.b value` and `--a.b=value` pairs of a command line, keys without the dashes."""
    pairs, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            pairs.append((key, value))
        elif arg.startswith("--"):
            has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            pairs.append((arg[2:], args[i + 1] if has_value else "true"))
            i += has_value
        i += 1
    return pairs


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
