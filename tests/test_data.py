import gzip
import shutil
from types import SimpleNamespace

import pytest
import torch

from src import data
from src.data import MEAN, STD, DataError, MNISTDataModule, random_affine, read_idx
from src.pieces import NOT_DIGIT, not_digits
from tests.conftest import DATA, run_cli


@pytest.fixture(scope="module")
def dm():
    dm = MNISTDataModule(data_dir=str(DATA), download=False)
    dm.setup("fit")
    dm.setup("test")
    return dm


@pytest.fixture
def data_copy(tmp_path):
    """A private copy of the four files, to damage."""
    for f in DATA.glob("*-ubyte.gz"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_split_sizes_shapes_and_dtypes(dm):
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (55_000, 5_000, 10_000)
    for ds in (dm.train_set, dm.val_set, dm.test_set):
        assert ds.images.dtype == torch.uint8 and ds.images.shape[1:] == (28, 28)
        assert ds.labels.dtype == torch.int64 and set(ds.labels.unique().tolist()) == set(range(10))
    # The official test set's label counts (data/mnist/README.md).
    counts = torch.bincount(dm.test_set.labels).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_split_is_fixed_and_disjoint(dm):
    again = MNISTDataModule(data_dir=str(DATA), download=False)
    again.setup("fit")
    assert torch.equal(again.val_set.images, dm.val_set.images)
    assert torch.equal(again.train_set.labels, dm.train_set.labels)
    other = MNISTDataModule(data_dir=str(DATA), download=False, split_seed=1)
    other.setup("fit")
    assert not torch.equal(other.val_set.images, dm.val_set.images)
    # Together, train and val are exactly the 60k training images (as multisets of labels).
    all_labels = torch.cat([dm.train_set.labels, dm.val_set.labels])
    assert torch.equal(torch.bincount(all_labels), torch.tensor([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]))


def test_loader_yields_whole_batches(dm):
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (256, 28, 28) and images.dtype == torch.uint8 and labels.shape == (256,)
    images, labels = next(iter(dm.val_dataloader()))
    assert images.shape == (1000, 28, 28)
    # The loaders work unchanged with the DistributedSampler that Lightning injects under DDP.
    sampler = torch.utils.data.DistributedSampler(dm.train_set, num_replicas=2, rank=1, shuffle=False)
    loader = torch.utils.data.DataLoader(dm.train_set, batch_size=8, sampler=sampler, collate_fn=data._batch_is_ready)
    images, labels = next(iter(loader))
    assert torch.equal(labels, dm.train_set.labels[1:16:2])


def test_augmentation_only_in_training(dm):
    batch = (dm.train_set.images[:64], dm.train_set.labels[:64])
    plain = ((batch[0].unsqueeze(1).float() / 255) - MEAN) / STD
    for stage in ("validating", "testing", "predicting", "sanity_checking"):
        dm.trainer = SimpleNamespace(training=False, **{stage: True})
        x, y = dm.on_after_batch_transfer(batch, 0)
        assert torch.equal(x, plain) and torch.equal(y, batch[1])
    dm.trainer = SimpleNamespace(training=True)
    x, _ = dm.on_after_batch_transfer(batch, 0)
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
    changed = (x - plain).abs().flatten(1).amax(1) > 0.1
    assert changed.float().mean() > 0.9  # nearly every image moved
    # Ink is preserved roughly: a small affine warp neither erases nor invents the digit.
    ink = lambda t: (t * STD + MEAN).sum((1, 2, 3))
    assert torch.allclose(ink(x), ink(plain), rtol=0.35)
    dm.trainer = None


def test_not_digits_are_added_to_training_batches_only(dm):
    batch = (dm.train_set.images[:64], dm.train_set.labels[:64])
    dm.not_digits = 0.25
    try:
        dm.trainer = SimpleNamespace(training=True)
        x, y = dm.on_after_batch_transfer(batch, 0)
        assert x.shape == (80, 1, 28, 28) and torch.equal(y[:64], batch[1]) and (y[64:] == NOT_DIGIT).all()
        dm.trainer = SimpleNamespace(training=False, validating=True)
        x, y = dm.on_after_batch_transfer(batch, 0)
        assert x.shape == (64, 1, 28, 28) and torch.equal(y, batch[1])
    finally:
        dm.not_digits, dm.trainer = 0.0, None


def _box(x: torch.Tensor) -> tuple[int, int]:
    """(28, 28) -> the height and width in px of its ink (> 0.2)."""
    ys, xs = torch.nonzero(x > 0.2, as_tuple=True)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def test_not_digits_are_fitted_like_the_readers_digits(dm):
    x = dm.train_set.images[:256].unsqueeze(1).float() / 255
    out = not_digits(x, 300, torch.Generator().manual_seed(0))
    assert out.shape == (300, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
    boxes = [_box(a[0]) for a in out]
    # The longer side of the ink is the reader's 20 px (bilinear edges: 19-22; 293 of these 300: a piece's box
    # can hold a faint pixel that the resampling drops), the centre of mass at the centre.
    assert sum(19 <= max(b) <= 22 for b in boxes) >= 290
    mass = out[:, 0].sum((1, 2))
    cy = (out[:, 0].sum(2) * torch.arange(28)).sum(1) / mass
    cx = (out[:, 0].sum(1) * torch.arange(28)).sum(1) / mass
    assert (cy - 13.5).abs().max() < 1.5 and (cx - 13.5).abs().max() < 1.5
    # Every third is a pair of whole digits side by side: wider than tall (median width / height 1.375 here),
    # where the digits it is made of are taller than wide (0.80).
    pairs = torch.tensor([w / h for h, w in boxes[::3]])
    singles = torch.tensor([w / h for h, w in (_box(a[0]) for a in x)])
    assert pairs.median() >= 1.35 and singles.median() <= 0.8


def test_random_affine_identity_and_bounds():
    x = torch.rand(5, 1, 28, 28)
    assert torch.allclose(random_affine(x, 0, 0, 0), x, atol=1e-5)
    y = random_affine(x, 15, 0.1, 3)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1


def test_corrupted_file_is_named(data_copy):
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(gzip.decompress(path.read_bytes()))
    blob[100] = (blob[100] + 1) % 10  # a valid-looking but wrong label
    path.write_bytes(gzip.compress(bytes(blob)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz is corrupted .*SHA-256"):
        read_idx(data_copy, "t10k-labels-idx1-ubyte")


def test_truncated_file_is_named(data_copy):
    path = data_copy / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz is truncated"):
        read_idx(data_copy, "train-images-idx3-ubyte")
    raw = data_copy / "t10k-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress((data_copy / "t10k-images-idx3-ubyte.gz").read_bytes())[:5000])
    (data_copy / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte is truncated"):
        read_idx(data_copy, "t10k-images-idx3-ubyte")


def test_wrong_kind_of_file_is_named(data_copy):
    (data_copy / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(DataError, match="not an IDX file of MNIST labels"):
        read_idx(data_copy, "t10k-labels-idx1-ubyte")


def test_download_from_mirror_verifies(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    shutil.copytree(DATA, mirror)
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0" * 20))  # bad copy
    good = tmp_path / "good"
    shutil.copytree(DATA, good)
    monkeypatch.setattr(data, "MIRRORS", (f"file://{mirror}/", f"file://{good}/"))
    target = tmp_path / "fresh"
    dm = MNISTDataModule(data_dir=str(target))
    dm.prepare_data()  # the bad mirror's copy is rejected, the second mirror's kept
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in DATA.glob("*-ubyte.gz"))
    dm.setup("test")
    assert len(dm.test_set) == 10_000


def test_offline_download_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))
    with pytest.raises(DataError, match=r"could not download train-images-idx3-ubyte\.gz into .*copy the four MNIST"):
        MNISTDataModule(data_dir=str(tmp_path)).prepare_data()


def test_cli_reports_corrupted_data_in_one_line(data_copy):
    path = data_copy / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-50])
    proc = run_cli("fit", "--data.data_dir", str(data_copy), "--trainer.logger", "false", cwd=data_copy, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "train-labels-idx1-ubyte.gz is truncated" in lines[-1]
    assert "Traceback" not in proc.stderr
