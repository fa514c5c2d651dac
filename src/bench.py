"""Training benchmark: what `fit` costs over a bare PyTorch loop, and what our data path saves.

    python -m src.bench                                   # the default recipe, 5 interleaved rounds
    python -m src.bench --config configs/fast.yaml --rounds 7
    python -m src.bench --config configs/fast.yaml --against model.pool_first=false   # what a setting buys

1. `python -m src.train fit` for one epoch, run in-process exactly as a user runs it (progress bar,
   TensorBoard logging, metrics, validation, best.ckpt and last.ckpt), against a bare PyTorch loop
   doing the same work: the same net, optimiser, schedule, precision, augmentation, not-digits, EMA and
   in-memory batches, a validation pass over the 5,000 held-out images, and a checkpoint saved
   every 100 steps and at the end of the epoch. Timed from the first training batch to the end of
   the epoch's validation and checkpoints (`fit` reports the same span as its fit time).
2. One epoch of augmented training batches through our data path (a uint8 gather and one batched
   random affine per batch) against torchvision's best setups on the same cores: the dataset with
   `transforms.v2` per image in DataLoader worker processes, and `transforms.v2` on whole batches
   (faster, but one random warp per batch instead of one per image).
3. With `--against KEY=VALUE ...`: the bare loop again with those settings changed, in the same
   rounds, so that what a setting costs or saves is a ratio measured side by side.

Both sides of each comparison are warmed up, then alternate round by round (the order flips every
round), so a busy machine slows them alike. Each ratio is the median of the per-round ratios, with
their standard deviation (how much one round varies) and standard error (sd / sqrt(rounds): how far
the ratio itself may be off). An effect counts as measured when it exceeds two standard errors;
otherwise the benchmark says so. Prints a table, then one key=value line per figure.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import yaml

from src.data import MEAN, STD, MNISTDataModule
from src.module import MNISTClassifier

warnings.filterwarnings("ignore", ".*does not have many workers.*")

CHECKPOINT_EVERY = 100  # steps, as configs/default.yaml's last_checkpoint.every_n_train_steps


def cli_fit(config_args: list[str], logdir: str) -> float:
    """One epoch of `python -m src.train fit`, in-process; returns the fit time it records."""
    from src.train import main

    args = ["fit", *config_args, "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
            "--trainer.logger.init_args.save_dir", logdir]
    # Lightning's info lines go to handlers made at import time, which the redirects below do not reach.
    loggers = [logging.getLogger(name) for name in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main(args)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    latest = max(Path(logdir).glob("mnist/version_*"), key=lambda p: p.stat().st_mtime)
    return yaml.safe_load((latest / "results.yaml").read_text())["fit_seconds"]


def bare_fit(cfg: dict, ckpt_dir: str) -> float:
    """The same epoch written by hand: train, update the EMA, validate, save checkpoints; no Trainer."""
    L.seed_everything(0, verbose=False)
    module, dm = MNISTClassifier(**cfg["model"]), MNISTDataModule(**cfg["data"])
    dm.setup("fit")
    net = module.net
    loader = dm.train_dataloader()
    opt, sched = module.optimizer_and_schedule(total_steps=len(loader))  # the module's own recipe
    bf16 = cfg["precision"].startswith("bf16")
    state = lambda: {"net": net.state_dict(), "ema": module.eval_net.state_dict(), "opt": opt.state_dict(),
                     "sched": sched.state_dict()}
    start = time.perf_counter()
    net.train()
    for step, (images, labels) in enumerate(loader, 1):
        x, labels = dm.training_batch(images, labels)  # augmented, not-digits appended, as fit's batches
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = module.training_loss(net(x), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        module.update_ema(step)
        if step % CHECKPOINT_EVERY == 0:
            torch.save(state(), Path(ckpt_dir) / "last.ckpt")
    correct = 0
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        for images, labels in dm.val_dataloader():
            correct += int((module.eval_net(dm.transform(images, augment=False)).argmax(1) == labels).sum())
    torch.save(state(), Path(ckpt_dir) / "best.ckpt")
    torch.save(state(), Path(ckpt_dir) / "last.ckpt")
    return time.perf_counter() - start


def ours_data_epoch(cfg: dict) -> float:
    dm = MNISTDataModule(**cfg["data"])
    dm.setup("fit")
    start = time.perf_counter()
    for images, _ in dm.train_dataloader():
        dm.transform(images, augment=dm.augment)
    return time.perf_counter() - start


def _v2_affine(d: dict):
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomAffine(d["rotate_deg"], translate=(d["shift_px"] / 28,) * 2, scale=(1 - d["scale"], 1 + d["scale"])),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize((MEAN,), (STD,)),
    ])


def torchvision_workers_epoch(cfg: dict, root: Path) -> float:
    """torchvision's usual pipeline at its best here: uint8 tensors, v2 per image, one worker per core."""
    from torchvision import datasets, transforms
    from torchvision.transforms import v2

    d = cfg["data"]
    dataset = datasets.MNIST(root, train=True, download=False,
                             transform=transforms.Compose([v2.PILToTensor(), _v2_affine(d)]))
    train = torch.utils.data.Subset(dataset, range(60000 - d["val_size"]))
    loader = torch.utils.data.DataLoader(train, batch_size=d["batch_size"], shuffle=True, drop_last=True,
                                         num_workers=os.cpu_count() or 1)
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


def torchvision_batched_epoch(cfg: dict) -> float:
    """v2 on whole uint8 batches, in-process: fast, but one random warp per batch, not per image."""
    d = cfg["data"]
    dm = MNISTDataModule(**cfg["data"])
    dm.setup("fit")
    transform = _v2_affine(d)
    start = time.perf_counter()
    for images, _ in dm.train_dataloader():
        transform(images.unsqueeze(1))  # (B, 1, 28, 28)
    return time.perf_counter() - start


def torchvision_root(data_dir: str, tmp: str) -> Path:
    raw = Path(tmp) / "MNIST" / "raw"  # the layout torchvision.datasets.MNIST reads, decompressed
    raw.mkdir(parents=True)
    for gz in Path(data_dir).glob("*-ubyte.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return Path(tmp)


def load_config(paths: list[str]) -> dict:
    cfg: dict = {}
    for path in paths:  # later files override earlier ones, as with the CLI
        for key, value in (yaml.safe_load(Path(path).read_text()) or {}).items():
            cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return {"model": cfg["model"], "data": cfg["data"], "precision": str(cfg["trainer"].get("precision", "32-true")),
            "task": cfg.get("task", "digits")}


def against(cfg: dict, overrides: list[str], parser: argparse.ArgumentParser) -> dict | None:
    """A copy of `cfg` with `section.key=value` overrides applied (values read as YAML), or None for none."""
    if not overrides:
        return None
    other = {"model": dict(cfg["model"]), "data": dict(cfg["data"]), "precision": cfg["precision"]}
    for item in overrides:
        key, sep, value = item.partition("=")
        section, _, name = key.partition(".")
        if not sep or section not in ("model", "data") or name not in other[section]:
            parser.error(f"--against {item}: expected model.KEY=VALUE or data.KEY=VALUE with a key of the config, "
                         f"e.g. model.pool_first=false")
        other[section][name] = yaml.safe_load(value)
    return other


def interleaved(sides: dict, rounds: int) -> dict[str, list[float]]:
    """Warm every side up once, then run them in turn for `rounds`, flipping the order every round."""
    for fn in sides.values():
        fn()
    times = {name: [] for name in sides}
    order = list(sides)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(sides[name]())
    return times


def ratio(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median, standard deviation and standard error of the per-round ratios a/b."""
    r = [x / y for x, y in zip(a, b)]
    sd = statistics.stdev(r) if len(r) > 1 else 0.0
    return statistics.median(r), sd, sd / len(r) ** 0.5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", default=[], help="recipe layered over configs/default.yaml")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per comparison (default: %(default)s)")
    parser.add_argument("--against", nargs="+", default=[], metavar="KEY=VALUE",
                        help="also time the bare loop with these settings changed, e.g. model.pool_first=false")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = load_config(["configs/default.yaml", *args.config])
    if cfg["task"] != "digits":
        parser.error(f"--config {args.config[-1]}: a config of the task {cfg['task']}; this benchmark times the digit "
                     "recipes (the line reader's fit time: docs/training.md)")
    other = against(cfg, args.against, parser)
    other_name = f"bare, {' '.join(args.against)}"
    if cfg["precision"].startswith("bf16"):
        from src.train import cpu_has_fast_bf16

        if not cpu_has_fast_bf16():
            cfg["precision"] = "32-true"  # what `fit` falls back to on this CPU
    config_args = [a for c in args.config for a in ("--config", c)] + ["--trainer.precision", cfg["precision"]]
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(cfg["data"]["data_dir"], tmp)
        sides = {"lightning fit": lambda: cli_fit(config_args, tmp), "bare PyTorch loop": lambda: bare_fit(cfg, tmp)}
        if other:
            sides[other_name] = lambda: bare_fit(other, tmp)
        fit = interleaved(sides, args.rounds)
        data = interleaved({"our data path": lambda: ours_data_epoch(cfg),
                            "torchvision v2, workers": lambda: torchvision_workers_epoch(cfg, root),
                            "torchvision v2, batched": lambda: torchvision_batched_epoch(cfg)}, args.rounds)
    rows = {**fit, **data}
    images = 60000 - cfg["data"]["val_size"]
    print(f"one epoch ({images:,} training images, batch {cfg['data']['batch_size']}, {cfg['precision']}, "
          f"{torch.get_num_threads()} threads), median of {args.rounds} interleaved rounds after a warm-up")
    width = max(len(name) for name in rows)
    print(f"{'':<{width}} {'seconds':>8} {'images/s':>10}  all rounds (s)")
    for name, seconds in rows.items():
        med = statistics.median(seconds)
        print(f"{name:<{width}} {med:>8.2f} {images / med:>10,.0f}  {' '.join(f'{s:.2f}' for s in seconds)}")
    figures = {
        "lightning_overhead_ratio": ratio(fit["lightning fit"], fit["bare PyTorch loop"]),
        **({"against_time_ratio": ratio(fit[other_name], fit["bare PyTorch loop"])} if other else {}),
        "datapath_speedup_vs_workers": ratio(data["torchvision v2, workers"], data["our data path"]),
        "datapath_speedup_vs_batched": ratio(data["torchvision v2, batched"], data["our data path"]),
    }
    print(f"lightning_fit_s={statistics.median(fit['lightning fit']):.3f}")
    print(f"bare_fit_s={statistics.median(fit['bare PyTorch loop']):.3f}")
    for key, (med, sd, se) in figures.items():
        print(f"{key}={med:.3f}")
        print(f"{key}_sd={sd:.3f}")
        print(f"{key}_se={se:.3f}")
    for key, (med, sd, se) in figures.items():
        if abs(med - 1) <= 2 * se:
            print(f"note: {key} {med:.3f} is within two standard errors ({2 * se:.3f}) of 1: no difference "
                  f"resolved; more rounds or a quieter machine narrow it", file=sys.stderr)


if __name__ == "__main__":
    main()
