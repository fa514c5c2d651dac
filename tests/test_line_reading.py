"""A number's lines read whole by the line model (export/reader/lines.py): the greedy decoding with each digit's
columns, the boxes (segment.py's when the counts agree, else the line cut between the digits' columns), the
line model found beside the digit model or named, its errors in one line; and a small trained line reader
read through DigitClassifier and the CLI."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from export.predict import DigitClassifier, ModelError
from export.reader.lines import LINE, _ctc, _decode, _slope, read_line, read_lines
from export.reader.params import PREPROCESSING
from tests.conftest import REPO

BLANK = LINE["blank"]


def test_the_readers_line_defaults_are_the_exports_and_the_pages():
    """LINE, the numbers for a line model without them in its metadata, is how the export describes the lines
    it was trained on, and web/lines.js holds the same."""
    from export.lines_export import LINE as EXPORTED

    assert LINE == EXPORTED
    js = (REPO / "web" / "lines.js").read_text()
    body = js.split("export const LINE = {", 1)[1].split("}", 1)[0]
    assert {k.strip(): float(v) for k, v in (kv.split(":") for kv in body.split(","))} == LINE


def test_greedy_decoding_merges_repeats_drops_blanks_and_finds_each_digits_likeliest_column():
    best = [BLANK, 3, 3, 3, BLANK, 3, 7, 7, BLANK]  # "3", then "3" again after a blank, then "7"
    probs = np.full((11, len(best)), 0.01, np.float32)
    for t, c in enumerate(best):
        probs[c, t] = 0.5 + 0.01 * t * (c == 3 and t < 4)  # the first 3 likeliest at its last column
    probs[7, 6] = 0.9  # the 7 likeliest at its first
    assert _decode(probs, BLANK) == [(3, 1, 3, 3), (3, 5, 5, 5), (7, 6, 7, 6)]
    assert _decode(np.eye(11, dtype=np.float32)[[BLANK] * 4].T, BLANK) == []  # all blank


def test_the_slope_is_the_digits_centres_least_squares_and_none_for_two():
    boxes = [(10, 0, 30, 10), (15, 20, 35, 30), (20, 40, 40, 50)]  # (y0, x0, y1, x1): 5 px down per 20 right
    assert _slope(boxes) == pytest.approx(0.25)
    assert _slope(boxes[:2]) == 0.0


def bars(xs, y0=20, y1=60, width=5, shape=(80, 120)):
    """An ink dict (as preprocess._ink gives it) of upright bars 5 px wide at xs, and their boxes."""
    d = np.zeros(shape, np.float32)
    for x in xs:
        d[y0:y1, x:x + width] = 0.9
    boxes = [(y0, x, y1, x + width) for x in xs]
    return {"d": d, "d3": d, "t": 0.3, "desk": None}, boxes


def fake_model(classes):
    """A line model that reads the k-th run of inked columns of its input as classes[k], blank elsewhere."""
    def run(x):
        ink = x[0, 0].max(axis=0) > 0.5  # (W,)
        probs = np.full((11, x.shape[-1] // LINE["stride"]), 0.0, np.float32)
        probs[BLANK] = 1.0
        k = -1
        for t in range(probs.shape[1]):
            here = ink[t * LINE["stride"]:(t + 1) * LINE["stride"]].any()
            before = t > 0 and ink[(t - 1) * LINE["stride"]:t * LINE["stride"]].any()
            if here:
                k += not before
                probs[:, t] = 0.0
                probs[classes[k], t], probs[(classes[k] + 1) % 10, t] = 0.8, 0.2
        return probs
    return run, dict(LINE)


def test_a_line_read_as_many_digits_keeps_segments_boxes_and_multiplies_both_models_probabilities():
    ink, boxes = bars([10, 40, 70])
    classifier = np.zeros((3, 10), np.float32)
    classifier[[0, 1, 2], [5, 2, 9]] = [0.9, 0.7, 0.7]  # sure of a 5 where the line model reads a 4 (0.8, a 5 0.2)
    classifier[[0, 1, 2], [4, 3, 0]] = [0.1, 0.3, 0.3]
    digits = [{"input": np.full((28, 28), i, np.float32), "box": b, "probs": classifier[i]} for i, b in enumerate(boxes)]
    out = read_line(ink, digits, PREPROCESSING, fake_model([4, 2, 9]))
    assert [int(np.argmax(dg["probs"])) for dg in out] == [5, 2, 9]  # 0.2 x 0.9 over 0.8 x 0.1 at the first
    assert [dg["box"] for dg in out] == boxes and [dg["input"][0, 0] for dg in out] == [0, 1, 2]
    assert out[0]["probs"][[4, 5]] == pytest.approx([0.08 / 0.26, 0.18 / 0.26])
    assert out[1]["probs"][[2, 3]] == pytest.approx([0.56 / 0.62, 0.06 / 0.62])
    assert all(dg["probs"].dtype == np.float32 and dg["probs"].sum() == pytest.approx(1.0) for dg in out)


def test_ctc_is_torchs_ctc_loss():
    """_ctc, the log-probability of a digit string summed over its alignments, is torch's CTC loss negated."""
    torch = pytest.importorskip("torch")
    logits = torch.randn(11, 30, generator=torch.Generator().manual_seed(0))
    for digits in ([3, 1, 4], [1, 1, 7], [6], [2, 2, 2, 2]):
        loss = torch.nn.functional.ctc_loss(logits.log_softmax(0).T[:, None], torch.tensor([digits]), torch.tensor([30]),
                                            torch.tensor([len(digits)]), blank=BLANK, reduction="sum")
        assert _ctc(logits.softmax(0).numpy(), digits, BLANK) == pytest.approx(-float(loss), abs=1e-4)


def test_another_count_keeps_segments_digits_when_the_line_model_finds_them_nearly_as_likely():
    """Two touching 1s and a 7 that the grouping found as three digits; the line model reads the 1s' columns as
    one run (a 1 at 0.6, the blank at 0.4 in each), so greedy decoding reads "17". The grouping's "117" stands
    when the line model finds it within e^keep as likely as "17", and the line model's reading otherwise."""
    ink, boxes = bars([10, 18, 70])
    digits = [{"input": np.zeros((28, 28), np.float32), "box": b, "probs": np.eye(10, dtype=np.float32)[k]}
              for b, k in zip(boxes, [1, 1, 7])]

    def run(x):
        columns = x[0, 0].max(axis=0).reshape(-1, LINE["stride"]).max(axis=1) > 0.5  # (W / stride,) inked
        probs = np.zeros((11, len(columns)), np.float32)
        probs[BLANK] = 1.0
        runs = np.flatnonzero(np.diff(np.concatenate([[0], columns.astype(int), [0]])))  # starts and ends
        (a, b), (c, d) = runs[:2], runs[-2:]  # the touching 1s' columns, the 7's
        probs[[1, BLANK], a:b] = [[0.6], [0.4]]
        probs[[7, BLANK], c:d] = [[0.9], [0.1]]
        return probs

    def read(keep):
        out = read_line(ink, digits, PREPROCESSING, (run, {**LINE, "keep": keep}))
        return "".join(str(int(np.argmax(dg["probs"]))) for dg in out)

    assert read(LINE["keep"]) == "117"
    assert read(0.0) == "17"  # "117" is less likely than "17" under the line model, but not e^-keep as likely
    assert read(-np.inf) == "17"


def test_a_line_read_as_more_digits_is_cut_between_their_columns():
    ink, boxes = bars([10, 40, 70])
    one = (20, 10, 60, 75)  # segment.py saw one wide digit
    digits = [{"input": np.zeros((28, 28), np.float32), "box": one, "probs": np.eye(10, dtype=np.float32)[1]}]
    out = read_line(ink, digits, PREPROCESSING, fake_model([1, 7, 3]))
    assert [int(np.argmax(dg["probs"])) for dg in out] == [1, 7, 3]
    assert [dg["box"] for dg in out] == boxes  # each bar's own pixels: the columns map back to the line's
    assert all(dg["input"].shape == (28, 28) and dg["input"].max() == 1.0 for dg in out)


def test_a_line_the_model_reads_as_nothing_keeps_segments_reading():
    ink, boxes = bars([10, 40])
    digits = [{"input": np.zeros((28, 28), np.float32), "box": b, "probs": np.eye(10, dtype=np.float32)[5]} for b in boxes]
    nothing = (lambda x: np.eye(11, dtype=np.float32)[[BLANK] * (x.shape[-1] // LINE["stride"])].T, dict(LINE))  # all blank
    assert read_line(ink, digits, PREPROCESSING, nothing) is digits


def test_a_single_digit_is_read_as_itself_not_by_the_line_model():
    ink, boxes = bars([10, 40])
    one = [[{"input": np.zeros((28, 28), np.float32), "box": (20, 10, 60, 45), "probs": np.eye(10, dtype=np.float32)[4]}]]
    assert read_lines(ink, one, PREPROCESSING, fake_model([1, 1])) is one  # the line model would read 11
    unsure = np.zeros(10, np.float32)
    unsure[[4, 1]] = [0.6, 0.4]  # the classifier's 4 against the line model's sure 1 (0.8, a 2 at 0.2)
    two = [[{**one[0][0], "box": b, "probs": unsure}] for b in boxes]  # two lines of a digit each: a number
    assert ["".join(str(int(np.argmax(dg["probs"]))) for dg in line) for line in
            read_lines(ink, two, PREPROCESSING, fake_model([1, 1]))] == ["1", "1"]


def test_the_line_model_beside_the_model_is_found_named_or_left_out(good_model, line_model, tmp_path):
    beside = tmp_path / "mnist.onnx"
    beside.symlink_to(good_model)
    assert DigitClassifier(beside).line_model is None  # none beside it: digit by digit
    (tmp_path / "mnist.lines.onnx").symlink_to(line_model)
    assert DigitClassifier(beside).line_model is not None
    assert DigitClassifier(beside, lines=False).line_model is None
    assert DigitClassifier(good_model, lines=line_model).line_model[1]["height"] == 32
    with pytest.raises(ModelError, match=r"line model .*mnist.onnx is not a line reader \(write one with"):
        DigitClassifier(good_model, lines=good_model)
    with pytest.raises(ModelError, match=r"line model .*nothing.onnx not found"):
        DigitClassifier(good_model, lines=tmp_path / "nothing.onnx")


def test_the_cli_reads_with_the_line_model_and_names_a_bad_one_in_one_line(good_model, line_model, tmp_path):
    from tests.numbers import number_set

    paths = []
    for i, (blob, meta) in enumerate(number_set(6, seed=1, kind="clean")):
        paths.append(tmp_path / f"{i}.png")
        Image.open(io.BytesIO(blob)).save(paths[-1])
    cli = [sys.executable, "-m", "export.predict", "--model", str(good_model), "--json"]
    whole = json.loads(subprocess.run(cli + ["--lines", str(line_model), *map(str, paths)], capture_output=True,
                                      text=True, check=True, cwd=REPO).stdout)
    alone = json.loads(subprocess.run(cli + ["--lines", "none", *map(str, paths)], capture_output=True, text=True,
                                      check=True, cwd=REPO).stdout)
    clf = DigitClassifier(good_model, lines=line_model)
    assert [r["number"] for r in whole] == [clf.read(p)["number"] for p in paths]
    assert [r["number"] for r in alone] == [DigitClassifier(good_model, lines=False).read(p)["number"] for p in paths]
    probs = lambda rs: [d["probs"] for r in rs for d in r["digits"]]
    assert probs(whole) != probs(alone)  # the line model's probabilities, not the classifier's
    for r in whole:
        assert len(r["digits"]) == len(r["number"].replace(" ", ""))
        assert all(abs(sum(d["probs"]) - 1) < 1e-5 and d["confidence"] == max(d["probs"]) for d in r["digits"])
    bad = subprocess.run(cli + ["--lines", str(good_model), str(paths[0])], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [f"error: line model {good_model} is not a line reader (write one with "
                                               "`python -m export --lines`)"]
