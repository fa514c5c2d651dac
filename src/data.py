"""MNIST as verified, in-memory uint8 tensors, served a whole batch at a time.

The four official IDX files live in `data/mnist/` (gzip-compressed, checked by the SHA-256 of their
decompressed content). Each split is held in memory as one uint8 tensor; a batch is a single
tensor gather (`__getitems__`), and the float conversion, augmentation and normalisation run on
the whole batch on the training device (`on_after_batch_transfer`). No per-image Python, no PIL.

Training resumes exactly: the order of the training images is a permutation per epoch that can restart
partway through (`EpochSampler`), and every checkpoint holds, through the DataModule's `state_dict`,
how far the epoch got and the random states (torch, the GPU's, numpy, Python) at that point.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import random
import urllib.error
import urllib.request
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, PositiveInt
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from src.checkpoints import primitives
from src.pieces import NOT_DIGIT, not_digits

# Mean and std of the 60k training pixels scaled to [0, 1]; the exported ONNX graph applies the same.
MEAN, STD = 0.1307, 0.3081

# name -> (SHA-256 of the decompressed file, IDX magic, number of items). Digests as published
# next to the official mirrors; magic 2049 = labels (idx1), 2051 = 28x28 images (idx3).
FILES = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 2051, 60000),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 2049, 60000),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 2051, 10000),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 2049, 10000),
}
# The mirrors torchvision downloads from, in its order.
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")


class DataError(Exception):
    """A data problem the user can fix; the message is one line that says how."""


def _fix_hint(path: Path) -> str:
    return f"restore it (`git checkout -- {path}`) or delete it so the next run downloads it again"


def read_idx(data_dir: str | Path, name: str) -> torch.Tensor:
    """Read and verify one IDX file (`name.gz` or raw `name`) -> uint8 (N, 28, 28) or (N,)."""
    data_dir = Path(data_dir)
    sha, magic, count = FILES[name]
    gz, raw = data_dir / f"{name}.gz", data_dir / name
    path = gz if gz.exists() else raw
    if not path.exists():
        raise DataError(f"{gz} not found: run from the repository root or set --data.data_dir to the folder holding the MNIST files")
    try:
        blob = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path} is truncated or not gzip ({e}): {_fix_hint(path)}") from None
    dims = 3 if magic == 2051 else 1
    header = 4 + 4 * dims
    if len(blob) < header or int.from_bytes(blob[:4], "big") != magic:
        raise DataError(f"{path} is not an IDX file of MNIST {'images' if dims == 3 else 'labels'}: {_fix_hint(path)}")
    shape = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    expected = (count, 28, 28)[:dims]
    if shape != expected:
        raise DataError(f"{path} holds shape {shape}, expected {expected}: {_fix_hint(path)}")
    if len(blob) != header + math.prod(shape):
        raise DataError(f"{path} is truncated ({len(blob) - header} of {math.prod(shape)} data bytes): {_fix_hint(path)}")
    if hashlib.sha256(blob).hexdigest() != sha:
        raise DataError(f"{path} is corrupted (SHA-256 of its content differs from the official file): {_fix_hint(path)}")
    return torch.frombuffer(bytearray(blob[header:]), dtype=torch.uint8).reshape(shape)


def load_mnist(data_dir: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The 60k training or 10k test split: images uint8 (N, 28, 28), labels int64 (N,)."""
    prefix = "train" if train else "t10k"
    images = read_idx(data_dir, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(data_dir, f"{prefix}-labels-idx1-ubyte").long()
    return images, labels


def missing_files(data_dir: str | Path) -> list[str]:
    data_dir = Path(data_dir)
    return [n for n in FILES if not (data_dir / f"{n}.gz").exists() and not (data_dir / n).exists()]


def download(data_dir: str | Path) -> None:
    """Fetch the missing files from the official mirrors; keep only ones whose content verifies."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in missing_files(data_dir):
        target, errors = data_dir / f"{name}.gz", []
        for mirror in MIRRORS:
            try:
                with urllib.request.urlopen(mirror + name + ".gz", timeout=30) as response:
                    blob = response.read()
            except (urllib.error.URLError, OSError) as e:
                errors.append(f"{mirror}: {getattr(e, 'reason', e)}")
                continue
            partial = target.with_suffix(".gz.part")
            partial.write_bytes(blob)
            partial.replace(target)
            try:
                read_idx(data_dir, name)
                break
            except DataError as e:
                target.unlink()
                errors.append(f"{mirror}: {e}")
        else:
            raise DataError(
                f"could not download {name}.gz into {data_dir} ({'; '.join(errors)}): "
                "copy the four MNIST .gz files there by hand, or check the network"
            )


def random_affine(
    x: torch.Tensor, rotate_deg: float, scale: float, shift_px: float, elastic_px: float = 0.0, elastic_sigma: float = 4.0
) -> torch.Tensor:
    """Independently rotate, scale, shift (and elastically distort) each image of a (B, 1, H, W) batch, background 0."""
    b, _, h, w = x.shape
    u = torch.rand(b, 4, device=x.device) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(rotate_deg)
    zoom = 1 + u[:, 1] * scale
    shift = u[:, 2:] * (2 * shift_px / h)  # affine_grid spans [-1, 1] over the image: 2/h per pixel
    cos, sin = angle.cos() / zoom, angle.sin() / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    if elastic_px > 0:
        # Elastic distortion (Simard et al., 2003): white noise smoothed by a Gaussian of elastic_sigma px
        # is a field of local, smooth displacements; scaled so that its RMS is elastic_px pixels.
        radius = int(2 * elastic_sigma)
        g = torch.exp(-((torch.arange(-radius, radius + 1, device=x.device) / elastic_sigma) ** 2) / 2)
        g = (g / g.sum()).repeat(2, 1, 1)  # (2, 1, K): one kernel per displacement axis
        field = torch.randn(b, 2, h, w, device=x.device)
        field = F.conv2d(field, g.unsqueeze(2), padding=(0, radius), groups=2)  # smooth along x ...
        field = F.conv2d(field, g.unsqueeze(3), padding=(radius, 0), groups=2)  # ... and along y
        field = field * (elastic_px / field.square().mean((1, 2, 3), keepdim=True).sqrt())
        grid = grid + field.permute(0, 2, 3, 1) * (2 / h)  # pixels -> grid units
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class InMemoryMNIST(Dataset):
    """uint8 images (N, 28, 28) and int64 labels (N,) indexed a batch at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # DataLoader hands the whole batch of sampler indices here (DistributedSampler's too).
        i = torch.as_tensor(indices)
        return self.images[i], self.labels[i]


def _batch_is_ready(batch):
    # __getitems__ already returns the stacked batch; default_collate would re-split it.
    return batch


def rng_states(device: torch.device | None = None) -> dict:
    """The states of the random generators training draws from, as plain data (checkpoints load with weights_only).

    torch's CPU generator (shuffling seeds; augmentation and dropout on CPU), the training GPU's (augmentation and
    dropout there), numpy's and Python's (unused by this project, kept so that a resume restores whatever is used).
    """
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
              "python": random.getstate()}
    if device is not None and device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict, device: torch.device | None = None) -> None:
    """Restore what `rng_states` returned."""
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)


class EpochSampler(DistributedSampler):
    """The training order: a fresh permutation each epoch, which a resumed run can take up partway through.

    One device (`seed=None`): each pass seeds its permutation with a number drawn from torch's global generator,
    as torch's RandomSampler does. Several devices: DistributedSampler's permutation of `seed + epoch`, padded to
    a multiple of the ranks, every num_replicas-th index for this rank. Both give the orders of the samplers used
    before (RandomSampler; Lightning's DistributedSampler, which leaves this subclass in place).

    `pass_seed` is the seed of the pass under way; `resume(seed, skip)` makes the next pass use that seed, with
    no draw, and leave out its first `skip` indices, the ones already trained on.
    """

    def __init__(self, dataset: Dataset, seed: int | None = None, num_replicas: int = 1, rank: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed or 0)
        self.draw_seed = seed is None
        self.pass_seed: int | None = None
        self.resuming: tuple[int, int] | None = None

    def resume(self, seed: int, skip: int) -> None:
        self.resuming, self.pass_seed = (seed, skip), seed

    def __iter__(self):  # a generator, as RandomSampler's: the seed is drawn when the first batch is fetched
        if self.resuming is not None:
            (seed, skip), self.resuming = self.resuming, None
        else:
            seed = int(torch.empty((), dtype=torch.int64).random_().item()) if self.draw_seed else self.seed + self.epoch
            skip = 0
        self.pass_seed = seed
        indices = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(seed)).tolist()
        indices += (indices * math.ceil(self.total_size / len(indices)))[: self.total_size - len(indices)]
        yield from indices[self.rank : self.total_size : self.num_replicas][skip:]


class EvalLoader(DataLoader):
    """Validation, test and predict batches. Creating a pass's iterator draws from torch's CPU generator: the state
    before that draw is kept, for a checkpoint saved while validating during fit (see MNISTDataModule.state_dict)."""

    cpu_rng_before: torch.Tensor | None = None

    def __iter__(self):
        self.cpu_rng_before = torch.get_rng_state()
        return super().__iter__()


class TrainLoader(DataLoader):
    """The training DataLoader; on its first pass after a resume it restores the checkpoint's random states.

    They are restored where the interrupted run stood: before the pass begins when the checkpoint closed an
    epoch (the new pass then draws the same seeds as the uninterrupted run), after it begins when the pass is
    taken up partway (creating the iterator draws a seed that the uninterrupted run drew at the epoch's start).
    """

    restore: tuple[dict, torch.device | None] | None = None

    def __iter__(self):
        if self.restore is None:
            return super().__iter__()
        (states, device), self.restore = self.restore, None
        partway = isinstance(self.sampler, EpochSampler) and self.sampler.resuming is not None
        if not partway:
            set_rng_states(states, device)
        iterator = super().__iter__()
        if partway:
            set_rng_states(states, device)
        return iterator


class MNISTDataModule(L.LightningDataModule):
    def __init__(
        self,
        data_dir: str = "data/mnist",
        batch_size: PositiveInt = 256,
        eval_batch_size: PositiveInt = 1000,
        val_size: PositiveInt = 5000,
        split_seed: int = 0,
        augment: bool = True,
        rotate_deg: NonNegativeFloat = 10.0,
        scale: NonNegativeFloat = 0.1,
        shift_px: NonNegativeFloat = 2.0,
        elastic_px: NonNegativeFloat = 0.0,
        not_digits: NonNegativeFloat = 0.0,
        download: bool = True,
    ):
        """
        Args:
            data_dir: folder holding the four IDX files (.gz or raw); missing files are downloaded there.
            batch_size: training batch per device (the effective batch is this times the number of devices).
            eval_batch_size: batch for validation, test and predict (no gradients, so larger is faster).
            val_size: images held out of the 60k training set for validation; the same ones on every run.
            split_seed: seed of that train/val split, independent of the training seed.
            augment: random affine per training image; never applied to val/test/predict.
            rotate_deg: maximum rotation, degrees.
            scale: maximum relative zoom, e.g. 0.1 = 90%..110%.
            shift_px: maximum shift along each axis, pixels.
            elastic_px: RMS of a smooth random elastic displacement, pixels (Simard et al. 2003); 0 for none.
            not_digits: per training batch of B digits, append round(not_digits x B) inputs that are no single
                digit (touching pairs, pieces: src.pieces), labelled NOT_DIGIT, so that the classifier's
                confidence tells the number reader where to cut; 0 for none.
            download: fetch missing files from the official mirrors.
        """
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.hparams.update(primitives(self.hparams))
        self.data_dir = data_dir
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed = val_size, split_seed
        self.augment, self.rotate_deg, self.scale, self.shift_px = augment, rotate_deg, scale, shift_px
        self.elastic_px, self.not_digits = elastic_px, not_digits
        self.download = download
        self.train_set = self.val_set = self.test_set = None
        self.train_sampler: EpochSampler | None = None
        self.test_description = "official 10,000-image test set"  # fit's summary
        self._resume: dict | None = None  # from a checkpoint, for the next train_dataloader()

    def prepare_data(self) -> None:  # once per node, before setup()
        if self.download and missing_files(self.data_dir):
            download(self.data_dir)

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate") and self.train_set is None:
            images, labels = load_mnist(self.data_dir, train=True)
            if not 0 < self.val_size < len(labels):
                raise DataError(f"--data.val_size {self.val_size} must lie between 1 and {len(labels) - 1}")
            # A fixed permutation: every run and every DDP rank holds out the same validation images.
            order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.split_seed))
            train, val = order[: -self.val_size], order[-self.val_size :]
            self.train_set = InMemoryMNIST(images[train], labels[train])
            self.val_set = InMemoryMNIST(images[val], labels[val])
        if stage in ("test", "predict") and self.test_set is None:
            self.test_set = InMemoryMNIST(*load_mnist(self.data_dir, train=False))

    def _loader(self, dataset: InMemoryMNIST, train: bool, sampler: EpochSampler | None = None) -> DataLoader:
        return (TrainLoader if train else EvalLoader)(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            sampler=sampler,
            drop_last=train,  # no tiny last batch to upset BatchNorm statistics
            collate_fn=_batch_is_ready,
            num_workers=0,  # a batch is one in-memory gather: worker processes would only add IPC
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        shards = trainer.distributed_sampler_kwargs if trainer is not None else None
        if shards and getattr(trainer._accelerator_connector, "use_distributed_sampler", True):
            # Lightning's own choice under DDP: DistributedSampler seeded with the run's seed.
            sampler = EpochSampler(self.train_set, seed=int(os.environ.get("PL_GLOBAL_SEED", 0)), **shards)
        else:
            sampler = EpochSampler(self.train_set)
        loader = self._loader(self.train_set, train=True, sampler=sampler)
        self.train_sampler = sampler
        if self._resume is not None:
            if self._resume["seed"] is not None:
                sampler.resume(self._resume["seed"], self._resume["batches"] * self.batch_size)
            loader.restore = (self._resume["rng"], trainer.strategy.root_device)
            self._resume = None
        return loader

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if not isinstance(batch, (tuple, list)):
            return batch  # the model summary's example_input_array, already a float batch
        images, labels = batch  # uint8 (B, 28, 28), int64 (B,)
        if self.trainer is not None and self.trainer.training:
            return self.training_batch(images, labels)
        return self.transform(images, augment=False), labels

    def training_batch(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch, uint8 (B, 28, 28) and (B,) -> normalised float (B + n, 1, 28, 28), augmented if
        `augment`, and (B + n,) labels: n = round(not_digits x B) not-digits appended, labelled NOT_DIGIT."""
        x = self.transform(images, augment=self.augment)
        n = round(self.not_digits * len(x))
        if n:  # made of this batch's (augmented) digits, in [0, 1], then normalised alike
            x = torch.cat([x, (not_digits(x * STD + MEAN, n) - MEAN) / STD])
            labels = torch.cat([labels, labels.new_full((n,), NOT_DIGIT)])
        return x, labels

    def state_dict(self) -> dict:
        """Where the training data stream stands, saved in every checkpoint: resuming continues it exactly.

        `seed` and `batches`: the permutation of the epoch under way and how many of its batches have had their
        step (None and 0 once the epoch is complete: the next one draws its own); `rng`: the random states.
        Checkpoints are saved between steps (LastCheckpoint holds Ctrl-C until the step under way is done).
        """
        trainer = self.trainer
        if trainer is None or self.train_sampler is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        partway = 0 < done < trainer.num_training_batches and self.train_sampler.pass_seed is not None
        rng = rng_states(trainer.strategy.root_device)
        val = trainer.val_dataloaders
        if trainer.validating and getattr(val, "cpu_rng_before", None) is not None:
            # Ctrl-C during validation: the resumed run validates again, and draws again what this pass drew.
            rng = {**rng, "torch": val.cpu_rng_before}
        return {"seed": self.train_sampler.pass_seed if partway else None, "batches": done if partway else 0, "rng": rng}

    def load_state_dict(self, state: dict) -> None:
        self._resume = state if state else None  # applied by the train_dataloader() of the resumed run

    def transform(self, images: torch.Tensor, augment: bool) -> torch.Tensor:
        """uint8 (B, 28, 28) -> normalised float (B, 1, 28, 28), randomly warped if `augment`."""
        x = images.unsqueeze(1).float().div_(255)  # (B, 1, 28, 28) in [0, 1]
        if augment:
            x = random_affine(x, self.rotate_deg, self.scale, self.shift_px, self.elastic_px)
        return (x - MEAN) / STD
