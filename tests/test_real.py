"""tests/real.py: real photos and scans of handwritten digits by other people (../shared/real-digits,
skipped where that folder is absent), and its manifest, summary and command line on a tiny folder of
generated photos."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from export.predict import ImageError
from src.data import load_mnist
from tests import photos, real
from tests.conftest import DATA, REPO

REAL = REPO.parent / "shared" / "real-digits"


# ------------------------------------------------------------------ the real photos


@pytest.fixture(scope="module")
def real_rows(request):
    """Every entry of ../shared/real-digits read by the good model (built only where the folder exists)."""
    if not (REAL / "manifest.tsv").is_file():
        pytest.skip(f"../shared/real-digits not found: {REAL}")
    rows = real.evaluate(request.getfixturevalue("good_model"), REAL)
    print("\n" + real.report(rows))
    return rows


def test_real_single_digits_are_read(real_rows):
    single = [r for r in real_rows if not r["number"]]
    right = sum(r["correct"] for r in single)
    assert len(single) >= 50 and right >= 0.98 * len(single), real.report(real_rows)


def test_real_phone_photos_are_read_and_always_found(real_rows):
    phone = [r for r in real_rows if not r["number"] and r["kind"] == "phone-photo"]
    assert len(phone) >= 14
    right = sum(r["correct"] for r in phone)
    lost = [r["file"] for r in phone if "no digit found" in (r["error"] or "")]
    assert lost == [], real.report(real_rows)
    assert right >= len(phone) - 1, real.report(real_rows)  # 13 of the 14


# ------------------------------------------------------------------ the code, on generated photos


class FakeClassifier:
    """DigitClassifier's interface, answering from a table by file name (no model needed)."""

    answers: dict = {}

    def __init__(self, model, threads=None):
        assert threads == 1
        self.model = model

    def predict(self, images):
        path = images[0]
        Image.open(path).load()  # a real, readable image
        digit = self.answers[path.name]
        if digit is None:
            raise ImageError("no digit found (blank image)")
        return [SimpleNamespace(digit=digit, label=str(digit), confidence=0.75)]


class FakeReader(FakeClassifier):
    """... with a `read` method for numbers, as a later classifier may have."""

    def read(self, path):
        return {"number": self.answers[path.name]}


@pytest.fixture
def tiny_folder(tmp_path):
    """Six generated photos: four single digits, a blank one labelled 3, and a "number" -> (folder, answers)."""
    images, labels = load_mnist(DATA, train=False)
    rng = np.random.default_rng(0)
    (tmp_path / "single").mkdir()
    (tmp_path / "multi").mkdir()
    lines = ["file\tlabel\tkind\tbackground\tink\trepo\tpath\tcommit\tnote"]
    answers = {}
    plan = [(0, "phone-photo", "blue", "a/x", "right"), (1, "phone-photo", "black", "a/x", "wrong"),
            (2, "scan", "black", "b/y", "right"), (3, "scan", "pencil", "b/y", "right"),
            (None, "phone-photo", "blue", "a/x", "none")]
    for i, (index, kind, ink, repo, outcome) in enumerate(plan):
        digit = None if index is None else images[index].numpy()
        label = 3 if index is None else int(labels[index])
        blob, _ = photos.render(digit, rng, {"pen": photos.MNIST_INK, "resolution": photos.LOW_RES})
        name = f"{label}__{repo.replace('/', '_')}__{i}.jpg"
        (tmp_path / "single" / name).write_bytes(blob)
        answers[name] = {"right": label, "wrong": (label + 1) % 10, "none": None}[outcome]
        lines.append(f"single/{name}\t{label}\t{kind}\tplain\t{ink}\t{repo}\t{i}.jpg\t0\ta note, with commas")
    blob, _ = photos.render(images[4].numpy(), rng, {"resolution": photos.LOW_RES})
    (tmp_path / "multi" / "12__a_x__n.jpg").write_bytes(blob)
    answers["12__a_x__n.jpg"] = "12"
    lines.append("multi/12__a_x__n.jpg\t12\tphone-photo\tplain\tblue\ta/x\tn.jpg\t0\t")
    (tmp_path / "manifest.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path, answers


def test_manifest_summary_and_misses_on_generated_photos(tiny_folder, monkeypatch, tmp_path):
    import export.predict

    folder, answers = tiny_folder
    monkeypatch.setattr(FakeClassifier, "answers", answers)
    monkeypatch.setattr(export.predict, "DigitClassifier", FakeClassifier)
    monkeypatch.setattr(export.predict, "explain_panel", lambda clf, path, note="": Image.new("RGB", (8, 8), "white"))
    rows = real.evaluate("model.onnx", folder, explain=tmp_path / "explain")
    assert [r["file"].split("/")[0] for r in rows] == ["single"] * 5 + ["multi"]
    assert [r["correct"] for r in rows] == [True, False, True, True, False, None]  # the number is not read
    assert rows[4]["answer"] == "none" and "no digit found" in rows[4]["error"]
    assert dict((g, (n, ok)) for g, n, ok in real.summarise(rows)) == {
        "all single digits": (5, 3), "kind: phone-photo": (3, 1), "kind: scan": (2, 2),
        "ink: black": (2, 1), "ink: blue": (2, 1), "ink: pencil": (1, 1), "repo: a/x": (3, 1), "repo: b/y": (2, 2)}
    assert [r["file"] for r in real.misses(rows)] == [rows[1]["file"], rows[4]["file"]]
    assert sorted(p.name for p in (tmp_path / "explain").iterdir()) == sorted(
        f"{r['file'].split('/')[1]}.png" for r in real.misses(rows))
    text = real.report(rows)
    assert "numbers: 1 file, not read by the single-digit predictor" in text
    line = next(x for x in text.splitlines() if x.startswith(rows[1]["file"]))
    assert line.split()[1:] == [rows[1]["label"], rows[1]["answer"], "(0.75)"]
    assert "none (no digit found (blank image))" in text
    md = real.report(rows, markdown=True)
    assert "| all single digits | 5 | 3 | 60.0% |" in md and "| kind: scan | 2 | 2 | 100.0% |" in md
    assert f"| {rows[4]['file']} | 3 | none (no digit found (blank image)) |" in md
    # A classifier that reads numbers: the number is compared with its label, and counted.
    monkeypatch.setattr(export.predict, "DigitClassifier", FakeReader)
    rows = real.evaluate("model.onnx", folder)
    assert rows[5]["correct"] is True and ("numbers", 1, 1) in real.summarise(rows)
    assert "not read" not in real.report(rows)


def test_command_line_without_a_folder_or_manifest_says_why_in_one_line(tmp_path):
    for folder, why in [(tmp_path / "absent", "no such folder"), (tmp_path, "no manifest")]:
        proc = subprocess.run([sys.executable, "-m", "tests.real", str(folder), "--model", "model.onnx"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and why in proc.stderr
    (tmp_path / "manifest.tsv").write_text("file\tlabel\n")
    assert real.main([str(tmp_path), "--model", "model.onnx"]) == 2
