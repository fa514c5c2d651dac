"""export/predict.py, the torch-free edge predictor (export/reader/): MNIST test digits rendered as scans and
photos, its preprocessing, the CLI's handling of bad inputs and models, and that it runs without torch, also
as the one file predict.pyz that the export writes."""

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from export.predict import DigitClassifier, ImageError, Prediction, preprocess
from src.data import load_mnist
from tests.conftest import DATA, REPO

N = 300  # digits per rendering: enough to measure accuracy to about a point, fast on a CPU
II = np.arange(28)


@pytest.fixture(scope="module")
def onnx_model(exported_model):
    """tests/conftest.py's session fixture: a verified fp32 .onnx of a small trained model (~98% accurate)."""
    return exported_model


@pytest.fixture(scope="module")
def clf(onnx_model):
    return DigitClassifier(onnx_model)


@pytest.fixture(scope="module")
def digits():
    """The first N test digits, uint8 (N, 28, 28) white on black, and their labels (N,)."""
    images, labels = load_mnist(DATA, train=False)
    return images[:N].numpy(), labels[:N].numpy()


def accuracy(clf, images, labels) -> float:
    return float(np.mean([p.digit for p in clf.predict(images)] == labels))


def on_paper(a: np.ndarray, size=(112, 112), ink=30, paper=215, noise=0.0, seed=0) -> np.ndarray:
    """A scan: dark ink on grey paper, enlarged to `size` (w, h), with optional sensor noise; uint8 (h, w)."""
    x = np.asarray(Image.fromarray(a).resize(size, Image.BICUBIC)).astype(np.float32) / 255
    x = paper - x * (paper - ink) + np.random.default_rng(seed).normal(0, noise, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def placed(a: np.ndarray, width=114, height=182, at=(20, 10)) -> Image.Image:
    """A photo: the digit enlarged 3x, off-centre on a non-square sheet of light paper."""
    sheet = Image.new("L", (width, height), 0)
    sheet.paste(Image.fromarray(a).resize((84, 84), Image.BICUBIC), at)
    return Image.fromarray(on_paper(np.asarray(sheet), size=(width, height)))


def com(x: np.ndarray) -> tuple[float, float]:
    return float(x.sum(1) @ np.arange(x.shape[0]) / x.sum()), float(x.sum(0) @ np.arange(x.shape[1]) / x.sum())


# ------------------------------------------------------------------ accuracy on renderings


def test_preprocessing_mnist_digits_costs_little(clf, digits):
    images, labels = digits
    raw = np.mean([p.digit for p in clf.predict_arrays(images.astype(np.float32) / 255)] == labels)
    pre = accuracy(clf, list(images), labels)
    assert raw >= 0.97 and pre >= raw - 0.01, (raw, pre)


RENDERINGS = {
    "inverted": lambda a: 255 - a,
    "200x200": lambda a: Image.fromarray(255 - a).resize((200, 200), Image.BICUBIC),
    "grey paper, noisy": lambda a: on_paper(a, size=(120, 120), ink=60, paper=190, noise=4),
    "non-square photo": placed,
    "slightly stretched 57x64": lambda a: Image.fromarray(255 - a).resize((57, 64), Image.BICUBIC),
}


@pytest.mark.parametrize("name", RENDERINGS)
def test_rendered_digits_are_classified(clf, digits, name):
    images, labels = digits
    assert accuracy(clf, [RENDERINGS[name](a) for a in images], labels) >= 0.97


FILES = {  # how each file is written: extension, and the PIL image saved
    "rgb.jpg": lambda a: Image.fromarray(on_paper(a)).convert("RGB"),
    "rgba-black-ink.png": lambda a: Image.fromarray(np.dstack([np.zeros((112, 112, 3), np.uint8),
                                                               np.asarray(Image.fromarray(a).resize((112, 112)))])),
    "rgba-white-ink.png": lambda a: Image.fromarray(np.dstack([np.full((112, 112, 3), 255, np.uint8),
                                                               np.asarray(Image.fromarray(a).resize((112, 112)))])),
    "palette.png": lambda a: Image.fromarray(on_paper(a)).convert("RGB").quantize(16),
    "16bit.png": lambda a: Image.fromarray(on_paper(a).astype(np.uint16) * 257),  # I;16, full 16-bit range
    "bilevel.png": lambda a: Image.fromarray(on_paper(a, (224, 224))).convert("1", dither=Image.Dither.NONE),  # a fax
    "float.tif": lambda a: Image.fromarray(on_paper(a).astype(np.float32) / 255),
}


@pytest.mark.parametrize("kind", FILES)
def test_image_files_are_classified(clf, digits, tmp_path, kind):
    images, labels = digits
    paths = []
    for i, a in enumerate(images):
        FILES[kind](a).save(tmp_path / f"{i}-{kind}")
        paths.append(tmp_path / f"{i}-{kind}")
    assert accuracy(clf, paths, labels) >= 0.97


# ------------------------------------------------------------------ preprocess properties


@pytest.mark.parametrize("render", [lambda a: a, lambda a: on_paper(a, (300, 300)), placed,
                                    lambda a: Image.fromarray(a).resize((12, 15), Image.BILINEAR)])
def test_preprocess_output_is_mnist_like(digits, render):
    for a in digits[0][:20]:
        x = preprocess(render(a))
        assert x.shape == (28, 28) and x.dtype == np.float32 and x.min() >= 0 and x.max() == pytest.approx(1)
        cy, cx = com(x)
        assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75  # MNIST's centre of mass is (14.0, 14.0)
        rows, cols = np.nonzero((x > 0.1).any(1))[0], np.nonzero((x > 0.1).any(0))[0]
        assert 18 <= max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 20


def test_polarity_and_paper_level_are_undone(digits):
    for a in digits[0][:20]:
        light_on_dark = preprocess(Image.fromarray(a).resize((112, 112), Image.BICUBIC))
        assert np.abs(preprocess(on_paper(a, ink=0, paper=255)) - light_on_dark).max() < 1e-3  # exact inverse
        # Grey paper, grey ink: after removing the paper level the digit is the same.
        assert np.abs(preprocess(on_paper(a, ink=90, paper=170)) - light_on_dark).mean() < 0.01


def test_big_photo_is_classified(clf, digits):
    images, labels = digits
    for a, label in zip(images[:3], labels[:3]):
        photo = Image.new("L", (4000, 3000), 200)  # 12 MP, reduced to 2048 px before anything else
        photo.paste(Image.fromarray(on_paper(a, (900, 900), paper=200)), (2500, 600))
        x = preprocess(photo)
        assert np.abs(x - preprocess(on_paper(a, (300, 300)))).mean() < 0.03
        assert clf.predict_arrays(x[None])[0].digit == label


def test_exif_orientation_is_applied(digits, tmp_path):
    upright = Image.fromarray(on_paper(digits[0][0]))
    tag = Image.Exif()
    tag[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "r.jpg", exif=tag, quality=95)
    assert np.abs(preprocess(tmp_path / "r.jpg") - preprocess(upright)).mean() < 0.02


def test_blank_images_have_no_digit():
    noisy = np.clip(np.random.default_rng(0).normal(230, 3, (64, 64)), 0, 255).astype(np.uint8)
    for blank in (np.full((40, 40), 255, np.uint8), noisy, np.zeros((28, 28)), Image.new("RGBA", (9, 9))):
        with pytest.raises(ImageError, match="no digit"):
            preprocess(blank)


# ------------------------------------------------------------------ Python API


def test_api_mixes_paths_pil_images_and_arrays(clf, digits, tmp_path):
    images, labels = digits
    Image.fromarray(255 - images[0]).save(tmp_path / "a.png")
    inputs = [tmp_path / "a.png", str(tmp_path / "a.png"), Image.fromarray(images[1]),
              images[2], images[3].astype(np.float32) / 255, np.dstack([images[4]] * 3)]
    preds = clf.predict(inputs)
    assert all(isinstance(p, Prediction) for p in preds)
    assert [p.digit for p in preds] == [labels[0], labels[0], *labels[1:5]]
    assert [p.label for p in preds] == [str(p.digit) for p in preds]
    for p in preds:
        assert p.probs.shape == (10,) and p.probs.sum() == pytest.approx(1, abs=1e-4) and p.confidence == p.probs.max()
    assert clf.predict([]) == []
    with pytest.raises(ImageError, match="no such file"):
        clf.predict([tmp_path / "missing.png"])


# ------------------------------------------------------------------ the CLI


def run(*args, cwd=REPO, env=None):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height 1-bit pixels but holds almost no data: a decompression bomb's header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.fixture
def folder(digits, tmp_path):
    """Three good digit images (labels in `good`), a hidden file, and every kind of bad input."""
    images, labels = digits
    good = {}
    for i in range(3):
        path = tmp_path / f"good{i}.png"
        Image.fromarray(on_paper(images[i])).save(path)
        good[str(path)] = int(labels[i])
    (tmp_path / ".hidden.png").write_bytes(b"not read")
    bad = {"text.png": b"just some text, not an image\n", "empty.png": b"",
           "truncated.png": (tmp_path / "good0.png").read_bytes()[:300],
           "bomb.png": png_header(100_000, 100_000),  # PIL itself refuses this much (an error)...
           "warned.png": png_header(10_000, 10_000),  # ... and warns about this much (made an error)
           "large.png": png_header(8000, 8000)}  # 64 MP: under PIL's limit, over the predictor's
    for name, blob in bad.items():
        (tmp_path / name).write_bytes(blob)
    Image.new("L", (50, 50), 240).save(tmp_path / "blank.png")
    return {"dir": tmp_path, "good": good}


def test_cli_reports_each_bad_input_and_classifies_the_rest(onnx_model, folder):
    d = folder["dir"]
    reasons = {"text.png": "not an image", "empty.png": "empty file", "truncated.png": "truncated",
               "bomb.png": "too large", "warned.png": "too large", "large.png": "too large",
               "blank.png": "no digit", "missing.png": "no such file"}
    paths = [*folder["good"], *(d / n for n in reasons)]
    proc = run("-m", "export.predict", "--model", onnx_model, "--threads", "1", *paths)
    assert proc.returncode == 1
    errors = proc.stderr.splitlines()
    assert len(errors) == len(reasons)
    for line, (name, reason) in zip(errors, reasons.items()):
        assert line.startswith(f"{d / name}: ") and reason in line, line
    lines = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [(path, int(digit)) for path, digit, _ in lines] == list(folder["good"].items())
    assert all(0.5 < float(conf) <= 1 and len(conf.split(".")[1]) == 4 for *_, conf in lines)


def test_cli_directory_all_good_and_json(onnx_model, folder, tmp_path_factory):
    good = tmp_path_factory.mktemp("good")
    for path in folder["good"]:
        shutil.copy(path, good)
    (good / ".hidden.png").write_bytes(b"skipped")
    (good / "sub").mkdir()  # not recursed into
    text = run("-m", "export.predict", "--model", onnx_model, good)
    assert text.returncode == 0 and text.stderr == ""
    rows = [line.split("\t") for line in text.stdout.splitlines()]
    assert [r[0] for r in rows] == [str(good / f"good{i}.png") for i in range(3)]  # sorted, files only
    js = run("-m", "export.predict", "--model", onnx_model, "--json", good)
    assert js.returncode == 0
    doc = json.loads(js.stdout)
    assert [(o["path"], str(o["digit"]), f"{o['confidence']:.4f}") for o in doc] == [tuple(r) for r in rows]
    for o in doc:
        assert set(o) == {"path", "number", "digits", "digit", "confidence", "probs"} and len(o["probs"]) == 10
        assert o["number"] == str(o["digit"]) and [d["digit"] for d in o["digits"]] == [o["digit"]]  # one digit each
        assert max(o["probs"]) == pytest.approx(o["confidence"], abs=1e-5)


def test_cli_model_errors_exit_2(folder, tmp_path):
    import onnx
    from onnx import TensorProto, helper
    image = next(iter(folder["good"]))
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("this is not a protobuf")
    # A valid ONNX model with the wrong input: (batch, 1, 32, 32).
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["probs"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 32, 32])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 1, 32, 32])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), tmp_path / "wrong.onnx")
    # ... and one with the right input but 784 outputs, not 10 class scores.
    graph = helper.make_graph([helper.make_node("Flatten", ["image"], ["probs"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 784])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), tmp_path / "flat.onnx")
    for model, reason in [(tmp_path / "missing.onnx", "not found"), (not_onnx, "cannot be loaded"),
                          (tmp_path / "wrong.onnx", "(batch, 1, 28, 28)"), (tmp_path / "flat.onnx", "(batch, 10)")]:
        proc = run("-m", "export.predict", "--model", model, image)
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.splitlines()) == 1 and str(model) in proc.stderr and reason in proc.stderr, proc.stderr
    assert run("-m", "export.predict", image).returncode == 2  # argparse: --model is required
    assert run("-m", "export.predict", "--model", not_onnx, "--threads", "0", image).returncode == 2


def test_runs_without_torch_and_as_a_single_file(onnx_model, folder, tmp_path):
    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is not installed on the device')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent), "PYTHONNOUSERSITE": "1"}
    image, digit = next(iter(folder["good"].items()))
    check = run("-c", "import sys, export.predict; assert 'torch' not in sys.modules, 'torch imported'\n"
                "try:\n    import torch\nexcept ImportError:\n    print('blocked')", env=env)
    assert check.returncode == 0 and check.stdout.strip() == "blocked", check.stderr
    assert run("-m", "export.predict", "--model", onnx_model, image, env=env).stdout.split("\t")[1] == str(digit)
    # Alone in a folder with the model, as on the device: the predict.pyz the export wrote beside the model,
    # its code all inside it (export/reader/ as a top-level `reader`), torch never imported.
    device = tmp_path / "device"
    device.mkdir()
    shutil.copy(onnx_model.parent / "predict.pyz", device)
    shutil.copy(onnx_model, device / "mnist.onnx")
    shutil.copy(image, device / "digit.png")
    proc = run("predict.pyz", "--model", "mnist.onnx", "digit.png", cwd=device, env=env)
    assert proc.returncode == 0 and proc.stdout == f"digit.png\t{digit}\t{proc.stdout.split()[-1]}\n"
    check = run("-c", "import sys; sys.path.insert(0, 'predict.pyz'); import reader, reader.cli\n"
                "assert 'torch' not in sys.modules, 'torch imported'\n"
                "assert reader.__file__.startswith('predict.pyz'), reader.__file__\n"
                "assert not any(m == 'export' or m.startswith('export.') for m in sys.modules), 'repository imported'",
                cwd=device, env=env)
    assert check.returncode == 0, check.stderr
