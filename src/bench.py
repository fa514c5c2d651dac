"""Training benchmark: what Lightning costs over a bare PyTorch loop, and what our data path saves.

    python -m src.bench                                   # the default recipe's model, 3 interleaved rounds
    python -m src.bench --config configs/fast.yaml --rounds 5

1. One training epoch of our LightningModule under `Trainer.fit` against a bare PyTorch loop doing
   the same work: same net, optimiser, schedule, precision, augmentation and in-memory batches.
   Lightning keeps its metrics and TensorBoard logging on; the progress bar and checkpoints are
   off (a terminal redraw and a disk write are not training). Epoch time is measured from the
   first to the last batch in both.
2. One epoch of training batches through our data path (uint8 gather + batched augmentation)
   against the usual `torchvision.datasets.MNIST` + `DataLoader` + per-image transforms.

The two sides of each comparison alternate round by round, so that a busy machine slows both.
Prints a table, then one key=value line per figure.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import yaml

from src.data import MEAN, STD, MNISTDataModule
from src.module import MNISTClassifier

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")


class EpochTimer(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.seconds = time.perf_counter() - self.start


def lightning_epoch(cfg: dict, logdir: str) -> float:
    L.seed_everything(0, verbose=False)
    module, dm = MNISTClassifier(**cfg["model"]), MNISTDataModule(**cfg["data"])
    timer = EpochTimer()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, precision=cfg["precision"], max_epochs=1, limit_val_batches=0,
        logger=L.pytorch.loggers.TensorBoardLogger(logdir, name="bench"), callbacks=[timer],
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        log_every_n_steps=cfg["log_every_n_steps"],
    )
    trainer.fit(module, dm)
    return timer.seconds


def bare_epoch(cfg: dict) -> float:
    """The same epoch written by hand: no Trainer, no metrics, no logging."""
    L.seed_everything(0, verbose=False)
    module, dm = MNISTClassifier(**cfg["model"]), MNISTDataModule(**cfg["data"])
    dm.setup("fit")
    net, hp = module.net, module.hparams
    loader = dm.train_dataloader()
    opt, sched = module.optimizer_and_schedule(total_steps=len(loader))  # the module's own recipe
    bf16 = cfg["precision"].startswith("bf16")
    net.train()
    start = time.perf_counter()
    for images, labels in loader:
        x = dm.transform(images, augment=dm.augment)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), labels, label_smoothing=hp.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if module.ema is not None:
            module.on_train_batch_end(None, None, 0)  # the same EMA update Lightning runs
    return time.perf_counter() - start


def ours_data_epoch(cfg: dict) -> float:
    dm = MNISTDataModule(**cfg["data"])
    dm.setup("fit")
    start = time.perf_counter()
    for images, _ in dm.train_dataloader():
        dm.transform(images, augment=dm.augment)
    return time.perf_counter() - start


def torchvision_data_epoch(cfg: dict, root: Path) -> float:
    from torchvision import datasets, transforms

    d = cfg["data"]
    transform = transforms.Compose([
        transforms.RandomAffine(d["rotate_deg"], translate=(d["shift_px"] / 28,) * 2, scale=(1 - d["scale"], 1 + d["scale"])),
        transforms.ToTensor(),
        transforms.Normalize((MEAN,), (STD,)),
    ])
    dataset = datasets.MNIST(root, train=True, download=False, transform=transform)
    train = torch.utils.data.Subset(dataset, range(60000 - d["val_size"]))
    loader = torch.utils.data.DataLoader(train, batch_size=d["batch_size"], shuffle=True, drop_last=True, num_workers=0)
    start = time.perf_counter()
    for _ in loader:
        pass
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
            "log_every_n_steps": cfg["trainer"].get("log_every_n_steps", 50)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", default=[], help="recipe layered over configs/default.yaml")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per comparison (default: %(default)s)")
    args = parser.parse_args(argv)
    cfg = load_config(["configs/default.yaml", *args.config])
    torch.set_num_threads(torch.get_num_threads())
    rows = {"lightning fit": [], "bare PyTorch loop": [], "our data path": [], "torchvision + DataLoader": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(cfg["data"]["data_dir"], tmp)
        bare_epoch(cfg)  # warm-up: first-touch allocations and kernel selection
        for r in range(args.rounds):
            # Alternate which side goes first, so neither always runs on a warmer (or cooler) machine.
            pair = [("bare PyTorch loop", lambda: bare_epoch(cfg)), ("lightning fit", lambda: lightning_epoch(cfg, tmp))]
            for name, fn in pair if r % 2 == 0 else pair[::-1]:
                rows[name].append(fn())
            rows["our data path"].append(ours_data_epoch(cfg))
            rows["torchvision + DataLoader"].append(torchvision_data_epoch(cfg, root))
    med = {k: statistics.median(v) for k, v in rows.items()}
    images = 60000 - cfg["data"]["val_size"]
    print(f"one training epoch ({images:,} images, batch {cfg['data']['batch_size']}, {cfg['precision']}, "
          f"{torch.get_num_threads()} threads), median of {args.rounds} interleaved rounds")
    print(f"{'':<26} {'seconds':>8} {'images/s':>10}  all rounds (s)")
    for name, seconds in med.items():
        print(f"{name:<26} {seconds:>8.2f} {images / seconds:>10,.0f}  {' '.join(f'{s:.2f}' for s in rows[name])}")
    print(f"lightning_epoch_s={med['lightning fit']:.3f}")
    print(f"bare_epoch_s={med['bare PyTorch loop']:.3f}")
    print(f"lightning_overhead_ratio={med['lightning fit'] / med['bare PyTorch loop']:.3f}")
    print(f"ours_data_epoch_s={med['our data path']:.3f}")
    print(f"torchvision_data_epoch_s={med['torchvision + DataLoader']:.3f}")
    print(f"datapath_speedup={med['torchvision + DataLoader'] / med['our data path']:.1f}")


if __name__ == "__main__":
    main()
