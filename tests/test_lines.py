"""The line reader: its written lines, its batches, its decoding, and its runs through the CLI (task `lines`)."""

import csv
import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

import src.train

from export.__main__ import main as export_main
from export.onnx_export import read_metadata
from src.data import load_mnist
from src.line_data import BatchOrder, TrainBatches, collate, repen, to_line, write
from src.line_model import BLANK, HEIGHT, LineNet, greedy_decode
from src.lines import line_of, writer
from tests.conftest import DATA, REPO, run_cli
from tests.test_cli import resolved_config
from tests.test_resume import assert_bitwise_equal, signal_at

# A small line net, 16 lines a batch, 10 batches an epoch: a run through the CLI in seconds.
TINY_LINES = [
    "--config", str(REPO / "configs" / "lines.yaml"),
    "--trainer.accelerator", "cpu",
    "--trainer.max_epochs", "2",
    "--trainer.log_every_n_steps", "5",
    "--model.channels", "[8, 16, 16, 16]",
    "--model.hidden", "16",
    "--data.data_dir", str(DATA),
    "--data.batch_size", "16",
    "--data.batches_per_epoch", "10",
    "--data.val_lines", "40",
    "--data.test_lines", "30",
    "--data.eval_batch_size", "16",
    "--last_checkpoint.every_n_train_steps", "5",
]


@pytest.fixture(scope="module")
def digits():
    images, labels = load_mnist(DATA, train=False)
    return images.numpy(), labels.numpy()


def test_a_line_holds_its_digits_in_order_touching_as_asked(digits):
    images, labels = digits
    idx = np.array([3, 2, 1, 18, 4])  # MNIST's test digits 0, 1, 2, 3, 4
    for touch, touching in ((0.0, 0), (1.0, 4)):  # gaps of 1 px or more never touch; all 4 pairs when asked
        rng = np.random.default_rng(5)
        size, slant = writer(rng)
        canvas, boxes, n, text, _ = line_of(images, labels, idx, size, slant, rng, touch)
        assert text == "".join(str(labels[i]) for i in idx) == "01234"
        assert n == touching
        assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)  # left to right
        for x0, y0, x1, y1 in boxes:  # each box inside the line, around ink
            assert 0 <= x0 < x1 <= canvas.shape[1] and 0 <= y0 < y1 <= canvas.shape[0]
            assert canvas[y0:y1, x0:x1].max() > 0.5


def test_to_line_crops_to_the_ink_and_scales_to_32_px():
    ink = np.zeros((60, 200), np.float32)
    ink[10:30, 40:140] = 1  # ink 20 px tall, 100 wide; with 2 px around: 24 x 104 -> 32 x 139
    line = to_line(ink)
    assert line.shape == (HEIGHT, 139)
    assert line[:, :2].max() < 0.05 and line[:, -2:].max() < 0.05  # the margin is empty paper
    assert line[HEIGHT // 2, 10:-10].min() > 0.99


def test_another_pen_thickens_or_thins_the_strokes_and_flattens_the_ink(digits):
    """repen: a marker's strokes cover more paper than MNIST's, a fine pen's less, both darker; pens=0 writes the
    lines as before, pens=1 writes every line in another pen."""
    images, labels = digits
    size, slant = writer(np.random.default_rng(1))
    line, *_ = line_of(images, labels, np.arange(5), size, slant, np.random.default_rng(1))
    covered, kinds = (line > 0.5).sum(), set()
    for seed in range(40):
        pen = repen(line, np.random.default_rng(seed))
        assert pen.shape == line.shape and pen.dtype == np.float32 and 0 <= pen.min() and pen.max() <= 1
        assert (pen[line == 0] == 0).all() or (pen > 0.5).sum() > covered  # only a marker inks new paper
        kinds.add("marker" if (pen > 0.5).sum() > 1.3 * covered else "fine" if (pen > 0.5).sum() < covered else "?")
        assert np.median(pen[pen > 0.08]) > np.median(line[line > 0.08])  # flat dark ink, as a photo's
    assert kinds == {"marker", "fine"}
    for pens, same in ((0.0, True), (1.0, False)):
        a, text_a = write(images, labels, np.random.default_rng(3), 4, 0.3)
        b, text_b = write(images, labels, np.random.default_rng(3), 4, 0.3, pens)
        assert text_a == text_b and (a.shape == b.shape and np.array_equal(a, b)) == same


def test_collate_pads_to_whole_columns_and_counts_each_lines_own():
    lines = [np.ones((HEIGHT, 30), np.float32), np.ones((HEIGHT, 45), np.float32)]
    x, targets, target_lengths, lengths, texts, index = collate(lines, ["12", "907"], first=40)
    assert x.shape == (2, 1, HEIGHT, 48) and x[0, 0, :, 30:].abs().sum() == 0
    assert targets.tolist() == [1, 2, 9, 0, 7] and target_lengths.tolist() == [2, 3]
    assert lengths.tolist() == [7, 11] and list(texts) == ["12", "907"] and index.tolist() == [40, 41]


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    columns = [1, 1, BLANK, 1, 2, 2, BLANK, BLANK, 7, 7]  # "1" held, a blank, "1" again: two 1s
    logits = torch.full((2, BLANK + 1, len(columns)), -5.0)
    for t, c in enumerate(columns):
        logits[:, c, t] = 5.0
    assert greedy_decode(logits) == ["1127", "1127"]
    assert greedy_decode(logits, torch.tensor([6, 3])) == ["112", "1"]  # the rest of each row is padding


def test_line_net_gives_a_column_per_4_px():
    net = LineNet((8, 8, 8, 8), 8).eval()
    assert net(torch.zeros(3, 1, HEIGHT, 100)).shape == (3, BLANK + 1, 25)


def test_a_training_batch_follows_from_its_seed_and_position(digits):
    images, labels = digits
    batches = TrainBatches(images, labels, batch_size=4, digits=(1, 8), touch=0.3, seed=0)
    a, b, c = batches[(0, 3, 0)], batches[(0, 3, 0)], batches[(1, 3, 0)]
    assert torch.equal(a[0], b[0]) and a[4] == b[4]  # the same lines again
    assert a[4] != c[4]  # another epoch, other lines
    assert len({len(t) for t in a[4]}) == 1  # one count of digits a batch: little padding
    assert a[5].tolist() == [12, 13, 14, 15]


def test_the_batch_order_takes_up_an_epoch_partway_once():
    epoch = [2]
    order = BatchOrder(5, rank=1, epoch=lambda: epoch[0])
    order.resume(1, 3)  # a resumed run: epoch 1 from its batch 3, whatever the trainer says at first
    iter(order)  # a DataLoader with workers makes an iterator it never reads, then the one it reads
    assert len(order) == 5 and list(order) == [(1, 3, 1), (1, 4, 1)]
    assert list(order) == [(2, b, 1) for b in range(5)]


def test_the_lines_config_is_its_own_and_names_its_task(monkeypatch, capsys):
    for args in (["--config", "configs/lines.yaml"], ["--task", "lines"]):
        config = resolved_config(monkeypatch, capsys, *args)
        assert config["task"] == "lines" and config["model"]["channels"] == [24, 48, 64, 96]
        assert config["data"]["digits"] == [1, 8] and "ema_decay" not in config["model"]  # default.yaml not layered in
    assert resolved_config(monkeypatch, capsys)["task"] == "digits"


def test_a_wrong_key_names_the_lines_help(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as done:
        src.train.main(["fit", "--config", "configs/lines.yaml", "--model.ema_decay", "0.9"])  # a digits key
    assert str(done.value.code).endswith("(valid keys and types: python -m src.train fit --config configs/lines.yaml --help)")
    assert "--model.ema_decay" in str(done.value.code)


def test_fit_test_predict_and_export_a_line_reader_through_the_cli(tmp_path):
    out = run_cli("fit", *TINY_LINES, cwd=tmp_path).stdout
    run_dir = tmp_path / "logs" / "lines" / "version_0"
    assert "test accuracy" in out and "(30 lines of 1-8 MNIST test digits, best checkpoint)" in out
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["task"] == "lines"
    results = yaml.safe_load((run_dir / "results.yaml").read_text())
    assert results["global_step"] == 20 and 0 <= results["test_acc"] <= 1
    # test and predict without naming the task: the latest run's config.yaml names it
    test = run_cli("test", "--data.test_lines", "30", "--data.data_dir", str(DATA), cwd=tmp_path).stdout
    assert "checkpoint  logs/lines/version_0/checkpoints/best.ckpt" in test and "test/cer" in test
    predict = run_cli("predict", "--data.test_lines", "30", "--data.data_dir", str(DATA), cwd=tmp_path).stdout
    assert "(30 test lines)" in predict
    rows = list(csv.DictReader((tmp_path / "logs" / "lines" / "version_2" / "predictions.csv").open()))
    assert [int(r["index"]) for r in rows] == list(range(30))
    assert all(set(r["number"]) <= set("0123456789") and 0 < float(r["probability"]) <= 1 for r in rows)
    assert all(r["truth"].isdigit() and 1 <= len(r["truth"]) <= 8 for r in rows)
    # `python -m export` ships the digit classifier: it finds no digits run here, and says how to make one
    proc = subprocess.run([sys.executable, "-m", "export", "--logs", str(tmp_path / "logs"), "--data-dir", str(DATA)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.strip() == (
        f"error: no best.ckpt of a digits run under {tmp_path / 'logs'}/: train first (`python -m src.train fit`) or "
        f"pass --ckpt PATH; nothing was written to artifacts/mnist.onnx")
    out = tmp_path / "mnist.lines.onnx"
    assert export_main(["--lines", "--logs", str(tmp_path / "logs"), "--out", str(out), "--data-dir", str(DATA)]) == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["verification"]["optimized"]["same_as_pytorch"] == 30  # the run's own test lines (--data.test_lines)
    assert sidecar["data"] == {"digits": [1, 8], "touch": 0.3, "test_lines": 30, "split_seed": 0}
    meta = read_metadata(out)
    assert meta["task"] == "lines" and meta["line"]["height"] == HEIGHT and meta["labels"][BLANK] == "blank"
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probs = sess.run(["probs"], {"line": np.zeros((3, 1, HEIGHT, 40), np.float32)})[0]
    assert probs.shape == (3, BLANK + 1, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("whole")
    run_cli("fit", *TINY_LINES, cwd=work)
    return torch.load(work / "logs" / "lines" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("kill, saved", [(13, 10), (17, 15)])  # just after the first epoch's end; mid-epoch
def test_a_killed_line_run_resumes_to_the_same_weights(whole_run, tmp_path, kill, saved):
    proc = run_cli("fit", *TINY_LINES, *signal_at(kill, "SIGKILL"), cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "test accuracy" not in proc.stdout
    last = tmp_path / "logs" / "lines" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == saved
    assert "test accuracy" in run_cli("fit", "--ckpt_path", "last", cwd=tmp_path).stdout
    resumed = torch.load(last, weights_only=True)
    assert whole_run["global_step"] == resumed["global_step"] == 20
    assert_bitwise_equal(whole_run["state_dict"], resumed["state_dict"])
    assert_bitwise_equal(whole_run["optimizer_states"], resumed["optimizer_states"])
