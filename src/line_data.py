"""Lines of handwritten digits for the line reader, written on the fly from MNIST (src/lines.py's hand).

Training lines are written from the 55,000 training digits of `src.data`'s split, validation lines from its
5,000 held-out digits, test lines from the official 10,000 test digits: no digit is in two of them. Each line
is cropped to its ink, 2 px around it, and scaled to 32 px tall (`to_line`); its width follows.

A training batch is a function of (seed, epoch, batch index, rank) alone: written in a worker process while the
network trains on the previous one, the same on every run, and resumable mid-epoch from the position saved in
the checkpoint (`state_dict`). All lines of a batch hold the same number of digits, 1-8 drawn per batch, so a
batch is padded little. Validation and test lines are fixed sets (their own seeds), batched by width.
"""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from src.checkpoints import primitives
from src.data import DataError, download, load_mnist, missing_files
from src.line_model import HEIGHT, STRIDE
from src.lines import line_of, writer

PAD = 2  # px of empty paper around a line's ink, at MNIST's scale (a digit ~20 px tall)
# px: a training line's ink is about this tall at MNIST's scale (the median of 2,000 lines written as below:
# 23 px over 1-8 digits, 23-24 px over 4-6; its digits' sizes and drifting baseline add to their 20 px). The
# reader scales a photo's line so that its ink is this tall for the padding and the stroke width.
INK_HEIGHT = 24


def to_line(ink: np.ndarray, height: int = HEIGHT, pad: int = PAD) -> np.ndarray:
    """A line's ink (H, W) float in [0, 1] -> (height, W') float32: cropped to the ink (> 0.08), `pad` px around,
    scaled to `height` px tall (the width in proportion)."""
    ys, xs = np.nonzero(ink > 0.08)
    a = np.pad(ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32), pad)
    h, w = a.shape
    return np.asarray(Image.fromarray(a).resize((max(STRIDE, round(w * height / h)), height), Image.BILINEAR))


def collate(lines: list[np.ndarray], texts: list[str], first: int = 0):
    """Lines (32, w_i) and their digits -> ink (B, 1, 32, W) padded right with 0 to a multiple of 4, the targets
    (sum of lengths,) int64 concatenated, their lengths (B,), each line's own columns w_i // 4 (B,), the texts
    and the lines' indices in their set (B,), from `first` on."""
    widths = [a.shape[1] for a in lines]
    width = -(-max(widths) // STRIDE) * STRIDE
    x = np.zeros((len(lines), 1, HEIGHT, width), np.float32)
    for k, a in enumerate(lines):
        x[k, 0, :, :widths[k]] = a
    targets = torch.tensor([int(c) for t in texts for c in t], dtype=torch.long)
    return (torch.from_numpy(x), targets, torch.tensor([len(t) for t in texts]),
            torch.tensor([w // STRIDE for w in widths]), texts, torch.arange(first, first + len(lines)))


def _dilate(a: np.ndarray, n: int) -> np.ndarray:
    """(H, W) -> (H, W): each pixel the brightest of the n x n square around it (a grey dilation). The reader
    has its own (export/reader/filters._max2, which centres an even window the other way); training keeps
    this one so that src/ needs nothing from the torch-free runtime and the measured lines stay as written."""
    h, w = a.shape
    p = np.pad(a, ((n // 2, (n - 1) // 2), (n // 2, (n - 1) // 2)))
    return np.max([p[dy:dy + h, dx:dx + w] for dy in range(n) for dx in range(n)], axis=0)


def repen(ink: np.ndarray, rng) -> np.ndarray:
    """A line's ink (H, W) in [0, 1] at MNIST's scale -> the same line in another pen, as the reader makes a
    photo's line (export/reader/lines.py): MNIST's strokes are 2-3 px wide with soft edges; a photo's come
    out of the reader flat dark, from a fine pen's 1-2 px (the reader widens thin strokes by whole px only)
    to a marker's 4-5 px that fills a small loop (it thins only large lines). Half the lines a marker
    (strokes 1 px wider, 2 px for a quarter of them), half a fine pen (only the stroke's core, darkness
    over 0.3-0.6 kept); then flattened: darkness x 1-1.6, clipped to 1."""
    if rng.random() < 0.5:
        ink = _dilate(ink, 3 if rng.random() < 0.25 else 2)
    else:
        core = rng.uniform(0.3, 0.6)
        ink = np.clip((ink - core) / (1 - core), 0, 1)
    return np.minimum(ink * rng.uniform(1.0, 1.6), 1).astype(np.float32)


def write(images, labels, rng, digits: int, touch: float, pens: float = 0.0) -> tuple[np.ndarray, str]:
    """One line of `digits` random digits of (images, labels), by a random writer -> (to_line ink, text);
    `pens`: the chance that the line is written in another pen (repen)."""
    size, slant = writer(rng)
    canvas, _, _, text, _ = line_of(images, labels, rng.integers(len(images), size=digits), size, slant, rng, touch)
    if pens and rng.random() < pens:
        canvas = repen(canvas, rng)
    return to_line(canvas), text


class TrainBatches(Dataset):
    """Index (epoch, batch, rank) -> a collated batch of `batch_size` lines, each of the same random count."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, digits: tuple[int, int],
                 touch: float, seed: int, pens: float = 0.0):
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.digits, self.touch, self.seed, self.pens = digits, touch, seed, pens

    def __getitem__(self, key: tuple[int, int, int]):
        rng = np.random.default_rng([self.seed, *key])
        k = int(rng.integers(self.digits[0], self.digits[1] + 1))
        lines = [write(self.images, self.labels, rng, k, self.touch, self.pens) for _ in range(self.batch_size)]
        return collate(*zip(*lines), first=key[1] * self.batch_size)


class BatchOrder(Sampler):
    """(epoch, batch, rank) for batch = 0..n-1 of the epoch under way, which `epoch()` tells when a pass begins
    (the trainer's: Lightning calls no sampler's set_epoch on a resume). `resume(epoch, start)` makes the next
    pass that epoch's, from batch `start` on: a resumed run's first pass, whose epoch Lightning has not counted
    yet when the checkpoint closed the one before."""

    def __init__(self, n: int, rank: int = 0, epoch=lambda: 0):
        self.n, self.rank, self.epoch, self.resuming = n, rank, epoch, None

    def resume(self, epoch: int, start: int) -> None:
        self.resuming = epoch, start

    def __len__(self) -> int:  # the whole epoch's, also when resumed: Lightning counts the batches done in it
        return self.n

    def __iter__(self):  # a generator: it reads its epoch at the first batch (a DataLoader with workers calls
        # iter() twice, and drops the first iterator unused)
        (epoch, start), self.resuming = self.resuming or (self.epoch(), 0), None
        yield from ((epoch, b, self.rank) for b in range(start, self.n))


class LinesDataModule(L.LightningDataModule):
    def __init__(
        self,
        data_dir: str = "data/mnist",
        batch_size: PositiveInt = 64,
        batches_per_epoch: PositiveInt = 1000,
        eval_batch_size: PositiveInt = 250,
        digits: tuple[PositiveInt, PositiveInt] = (1, 8),
        touch: ClosedUnitInterval = 0.3,
        pens: ClosedUnitInterval = 0.0,
        val_lines: PositiveInt = 2000,
        test_lines: PositiveInt = 2000,
        val_size: PositiveInt = 5000,
        split_seed: int = 0,
        workers: NonNegativeInt = 1,
        download: bool = True,
    ):
        """
        Args:
            data_dir: folder holding MNIST's four IDX files (.gz or raw); missing files are downloaded there.
            batch_size: training lines per batch and device.
            batches_per_epoch: training batches per epoch and device, each newly written.
            eval_batch_size: lines per validation or test batch.
            digits: the fewest and most digits of a line.
            touch: the share of neighbouring digits written touching (their inks overlap by 1-2 px).
            pens: the share of training lines written in another pen, a marker or a fine pen, as the reader makes
                a photo's lines (`repen`); validation and test lines keep MNIST's.
            val_lines, test_lines: the sizes of the fixed validation and test sets of lines.
            val_size, split_seed: the digits held out of MNIST's 60k for validation, as `src.data` holds them out.
            workers: processes writing training batches while the network trains (0: in the training process).
            download: fetch missing MNIST files from the official mirrors.
        """
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.hparams.update(primitives(self.hparams))
        if digits[0] > digits[1]:
            raise DataError(f"--data.digits {list(digits)}: the fewest digits must not exceed the most")
        self.train_digits = self.val_set = self.test_set = None  # (images, labels); lists of (line, text)
        self.sampler: BatchOrder | None = None
        self._resume: dict | None = None
        self.test_description = f"{test_lines:,} lines of {digits[0]}-{digits[1]} MNIST test digits"

    def prepare_data(self) -> None:
        if self.hparams.download and missing_files(self.hparams.data_dir):
            download(self.hparams.data_dir)

    def _fixed(self, images, labels, n: int, seed: int) -> list[tuple[np.ndarray, str]]:
        """n lines of (images, labels), random with `seed`, sorted by width (little padding per batch)."""
        rng, (lo, hi) = np.random.default_rng(seed), self.hparams.digits
        lines = [write(images, labels, rng, int(rng.integers(lo, hi + 1)), self.hparams.touch) for _ in range(n)]
        return sorted(lines, key=lambda line: line[0].shape[1])

    def setup(self, stage: str) -> None:
        h = self.hparams
        if stage in ("fit", "validate") and self.val_set is None:  # the train/val split as src.data's
            images, labels = load_mnist(h.data_dir, train=True)
            if not 0 < h.val_size < len(labels):
                raise DataError(f"--data.val_size {h.val_size} must lie between 1 and {len(labels) - 1}")
            order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(h.split_seed))
            train, val = order[: -h.val_size], order[-h.val_size:]
            images, labels = images.numpy(), labels.numpy()
            self.train_digits = images[train.numpy()], labels[train.numpy()]
            self.val_set = self._fixed(images[val.numpy()], labels[val.numpy()], h.val_lines, seed=h.split_seed + 1)
        if stage in ("test", "predict") and self.test_set is None:
            images, labels = load_mnist(h.data_dir, train=False)
            self.test_set = self._fixed(images.numpy(), labels.numpy(), h.test_lines, seed=h.split_seed + 2)

    def train_dataloader(self) -> DataLoader:
        h, trainer = self.hparams, self.trainer
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # the run's seed_everything
        if trainer is None:
            self.sampler = BatchOrder(h.batches_per_epoch)
        else:
            self.sampler = BatchOrder(h.batches_per_epoch, trainer.global_rank, lambda: trainer.current_epoch)
        if self._resume:
            self.sampler.resume(self._resume["epoch"], self._resume["batches"])
            self._resume = None
        dataset = TrainBatches(*self.train_digits, h.batch_size, tuple(h.digits), h.touch, seed, h.pens)
        return DataLoader(dataset, batch_size=None, sampler=self.sampler, num_workers=h.workers,
                          persistent_workers=False, prefetch_factor=2 if h.workers else None)

    def _eval_loader(self, lines) -> DataLoader:
        n = self.hparams.eval_batch_size
        batches = [collate(*zip(*lines[i:i + n]), first=i) for i in range(0, len(lines), n)]
        return DataLoader(batches, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def state_dict(self) -> dict:
        """The training stream's position, saved in every checkpoint: the epoch of the next batch and how many of its
        batches have had their step. The batches follow from the seed: a resume continues exactly."""
        trainer = self.trainer
        if trainer is None or self.sampler is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        if done < trainer.num_training_batches:
            return {"epoch": trainer.current_epoch, "batches": done}
        return {"epoch": trainer.current_epoch + 1, "batches": 0}  # the epoch's batches are done: the next one's

    def load_state_dict(self, state: dict) -> None:
        self._resume = state if state else None
