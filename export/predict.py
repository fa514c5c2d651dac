"""Classify handwritten digits in image files with the exported ONNX model, without torch.

Runs on a small CPU device: the only dependencies are numpy, onnxruntime and pillow.

    pip install onnxruntime numpy pillow

Copy this file and the model to the device, then:

    $ python predict.py --model mnist.onnx photo.jpg scans/
    photo.jpg	7	0.9981
    scans/a.png	3	0.9712
    scans/b.png: no digit found (blank image)          <- on stderr; exit status 1

    $ python predict.py --model mnist.onnx --json photo.jpg
    [{"path": "photo.jpg", "digit": 7, "confidence": 0.998123288154602, "probs": [1.21e-05, ..., 0.000201]}]

From the repository it is also `python -m export.predict ...`. Output: one line per classified image,
`path<TAB>digit<TAB>confidence` on stdout; with --json one JSON list instead, in input order, of
{"path": str, "digit": int, "confidence": float, "probs": [10 floats]} for the classified images
only. Each input that fails (missing, not an image, truncated, too large, blank) gets one line on
stderr, `path: reason`, and the others are still classified. Exit status: 0 all classified,
1 some inputs failed, 2 usage or model error.

In Python:

    from predict import DigitClassifier        # or: from export.predict import DigitClassifier
    clf = DigitClassifier("mnist.onnx")
    clf.predict(["photo.jpg", pil_image, numpy_array])   # -> [Prediction(digit=7, label='7', ...), ...]

Any photo or scan is first made to look like an MNIST digit, the way MNIST itself was made:
grayscale in [0, 1], light ink on dark ground, paper level removed, cropped to the digit, its longer
side scaled to 20 px, pasted on a 28x28 canvas with its centre of mass at the centre.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 50_000_000  # larger files are refused: a small PNG can decode to gigabytes (decompression bomb)
MIN_CONTRAST = 0.1  # ink must differ from the paper by 10% of full scale, or the image counts as blank
MAX_SIDE = 2048  # larger images are box-averaged down to this first (time and memory on small devices)
INK = 0.15  # the digit's bounding box: pixels above this fraction of the ink's peak (drops faint noise)
BATCH = 256
DEFAULTS = {"labels": [str(d) for d in range(10)], "preprocessing": {"fit": 20, "canvas": 28}}


class ImageError(ValueError):
    """One input cannot be classified; str() is the reason, one line."""


class ModelError(Exception):
    """The model file cannot be used; str() is the reason, one line."""


class Prediction(NamedTuple):
    digit: int  # index of the most probable class
    label: str  # its name from the model's metadata ("0".."9")
    confidence: float  # its probability
    probs: np.ndarray  # (10,) float32, softmax over the classes


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode a file, turning every way it can fail into an ImageError."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file")
        with warnings.catch_warnings():
            # PIL only warns between its own limit and twice that; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(f"too large ({img.width}x{img.height} pixels, limit {MAX_PIXELS // 10**6} megapixels)")
                img.load()  # decodes: a truncated or corrupt file raises here, not later
                return img
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"too large (over {MAX_PIXELS // 10**6} megapixels)") from None
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except PermissionError:
        raise ImageError("cannot read (permission denied)") from None
    except UnidentifiedImageError:
        raise ImageError("not an image (unknown or unsupported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # what PIL's decoders raise on bad data
        raise ImageError(f"truncated or corrupt image ({str(e).strip() or type(e).__name__})") from None


def _scale(a: np.ndarray) -> np.ndarray:
    """Any numeric array -> float32 in [0, 1], by the range its dtype implies."""
    if a.dtype == bool:
        return a.astype(np.float32)
    if a.dtype.kind == "u" and a.dtype.itemsize <= 2:  # uint8 / 255, uint16 (either byte order) / 65535
        return a.astype(np.float32) / np.iinfo(a.dtype).max
    a = a.astype(np.float32)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    if lo >= 0 and hi <= 1 and a.dtype.kind == "f":
        return a
    for top in (255.0, 65535.0):  # mode "I" holds 16-bit PNGs; float arrays often hold 0..255
        if lo >= 0 and hi <= top:
            return a / top
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _composite(y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten gray `y` with transparency onto a ground the ink shows up on; both (H, W) in [0, 1]."""
    opaque = y[alpha > 0.5]
    if opaque.size == 0:
        return np.ones_like(y)  # nothing visible: blank
    lo, hi = np.percentile(opaque, [5, 95])
    if hi - lo > 0.25:  # the visible part is a digit on its own paper: extend that paper
        ground = float(np.median(opaque))
    else:  # the visible part is the ink itself (e.g. a black digit on a transparent PNG): contrast it
        ground = 1.0 if opaque.mean() < 0.5 else 0.0
    return alpha * y + (1 - alpha) * ground


def to_gray(image) -> np.ndarray:
    """A path, PIL image or array -> float32 (H, W) in [0, 1], the image as it looks (not yet inverted)."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    if isinstance(image, Image.Image):
        img = ImageOps.exif_transpose(image)  # phones store portrait shots sideways plus a rotation tag
        if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
            img, full = img.convert("RGBA"), 255.0
        elif img.mode.startswith("I;16"):
            img, full = img.convert("I"), 65535.0  # 16-bit: full scale is 65535, however dark the content
        elif img.mode in ("I", "F"):
            full = None  # 32-bit: no fixed full scale, _scale infers one from the values
        else:  # 1, L, P, RGB, CMYK, YCbCr, ...
            img, full = img.convert("L"), 255.0
        if max(img.size) > MAX_SIDE:  # box-average big photos first: a 20 px digit needs no 12 MP
            img = img.reduce(-(-max(img.size) // MAX_SIDE))
        a = np.asarray(img).astype(np.float32) / full if full else np.asarray(img)  # (H, W) or (H, W, 4)
    else:
        a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        x = _scale(a)
        alpha = x[..., -1] if a.shape[2] in (2, 4) else None
        rgb = x[..., :3] if a.shape[2] >= 3 else x[..., :1]
        y = rgb @ np.array([0.299, 0.587, 0.114], np.float32) if rgb.shape[2] == 3 else rgb[..., 0]  # ITU-R 601 luma
        return _composite(y, alpha) if alpha is not None and alpha.min() < 1 else y
    if a.ndim != 2 or min(a.shape) == 0:
        raise ImageError(f"unsupported image shape {a.shape}: expected (H, W) gray or (H, W, 3|4) colour")
    return _scale(a)


def _border(x: np.ndarray) -> np.ndarray:
    k = max(1, min(x.shape) // 20)  # a frame 5% deep: paper in nearly every photo or scan
    return np.concatenate([x[:k].ravel(), x[-k:].ravel(), x[:, :k].ravel(), x[:, -k:].ravel()])


def preprocess(image, fit: int = 20, canvas: int = 28) -> np.ndarray:
    """Any image of one digit -> float32 (canvas, canvas) in [0, 1], light digit on dark, as in MNIST."""
    x = to_gray(image)  # (H, W)
    # Polarity: the frame is background. Light frame -> dark ink on paper -> invert to MNIST's light on dark.
    if np.median(_border(x)) > (x.min() + x.max()) / 2:
        x = 1.0 - x
    # Paper is rarely pure black (after inversion): subtract its level so the ground is 0.
    x = np.clip(x - np.median(_border(x)), 0, None)
    if x.max() < MIN_CONTRAST:
        raise ImageError("no digit found (blank image)")
    x /= x.max()
    rows, cols = np.nonzero((x > INK).any(axis=1))[0], np.nonzero((x > INK).any(axis=0))[0]
    x = x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # (h, w): the digit's bounding box
    h, w = x.shape
    size = (max(1, round(w * fit / max(h, w))), max(1, round(h * fit / max(h, w))))  # PIL wants (w, h)
    # Lanczos in PIL is antialiased when shrinking (its support widens with the factor) and sharp when
    # enlarging; clip its ringing and restore the peak so thin strokes of big photos stay bright.
    x = np.clip(np.asarray(Image.fromarray(x.astype(np.float32)).resize(size, Image.LANCZOS)), 0, None)
    if x.max() <= 0:
        raise ImageError("no digit found (blank image)")
    x /= x.max()  # (fh, fw), longer side `fit`
    # Centre of mass to the canvas centre by a whole-pixel shift, as MNIST did (its mean is (14.0, 14.0)).
    mass = x.sum()
    cy = (x.sum(axis=1) @ np.arange(x.shape[0])) / mass
    cx = (x.sum(axis=0) @ np.arange(x.shape[1])) / mass
    top, left = int(round(canvas / 2 - cy)), int(round(canvas / 2 - cx))
    out = np.zeros((canvas, canvas), np.float32)
    y0, x0 = max(top, 0), max(left, 0)  # clip the paste to the canvas
    y1, x1 = min(top + x.shape[0], canvas), min(left + x.shape[1], canvas)
    out[y0:y1, x0:x1] = x[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


def _meta(props: dict, key: str, default):
    try:
        value = json.loads(props[key])
        return value if isinstance(value, type(default)) else default
    except (KeyError, ValueError, TypeError):
        return default


class DigitClassifier:
    def __init__(self, model: str | os.PathLike, threads: int | None = None):
        model = Path(model)
        if not model.is_file():
            raise ModelError(f"model {model} not found (or not a file)")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: onnxruntime's warnings are not the user's business
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # not ONNX, truncated, unsupported opset, ...: onnxruntime raises many kinds
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ModelError(f"model {model} cannot be loaded ({reason})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.labels = [str(v) for v in _meta(props, "labels", DEFAULTS["labels"])]
        prep = {**DEFAULTS["preprocessing"], **_meta(props, "preprocessing", {})}
        self.fit, self.canvas = int(prep["fit"]), int(prep["canvas"])
        inputs = {i.name: i for i in self.session.get_inputs()}
        inp = inputs.get(str(_meta(props, "input", {}).get("name")), self.session.get_inputs()[0])
        if len(inp.shape) != 4 or list(inp.shape[1:]) != [1, self.canvas, self.canvas] or inp.type != "tensor(float)":
            raise ModelError(f"model {model} takes {inp.type} {inp.shape}, not float (batch, 1, {self.canvas}, {self.canvas})")
        outputs = {o.name: o for o in self.session.get_outputs()}
        out = outputs.get("probs", self.session.get_outputs()[0])  # without `probs`, softmax the first output
        classes = out.shape[-1] if out.shape else None  # an int, or a name/None when symbolic
        if len(out.shape) != 2 or (isinstance(classes, int) and classes != len(self.labels)):
            raise ModelError(f"model {model} returns {out.shape}, not (batch, {len(self.labels)}) class scores")
        self.input_name, self.output = inp.name, out.name

    def preprocess(self, image) -> np.ndarray:
        return preprocess(image, self.fit, self.canvas)

    def predict(self, images) -> list[Prediction]:
        """Paths, PIL images or arrays -> one Prediction each. A bad input raises ImageError."""
        return self.predict_arrays(np.stack([self.preprocess(i) for i in images])) if len(images) else []

    def predict_arrays(self, batch: np.ndarray) -> list[Prediction]:
        """Preprocessed (N, canvas, canvas) float32 -> N Predictions, in chunks of BATCH per session run."""
        out = []
        for start in range(0, len(batch), BATCH):
            x = np.ascontiguousarray(batch[start:start + BATCH, None], dtype=np.float32)  # (n, 1, 28, 28)
            p = self.session.run([self.output], {self.input_name: x})[0]  # (n, 10)
            if self.output != "probs":
                p = np.exp(p - p.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
            for row in p:
                k = int(row.argmax())
                out.append(Prediction(k, self.labels[k] if k < len(self.labels) else str(k), float(row[k]), row))
        return out


def expand(args: list[str]) -> list[Path]:
    """Directories -> their visible files, sorted (not recursive); other paths as given."""
    paths = []
    for arg in map(Path, args):
        if arg.is_dir():
            files = sorted(p for p in arg.iterdir() if p.is_file() and not p.name.startswith("."))
            paths += files or [arg]  # an empty directory is reported as a failed input
        else:
            paths.append(arg)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify handwritten digits in image files with an ONNX model.")
    parser.add_argument("--model", required=True, help="the exported .onnx file")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of tab-separated lines")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for inference (default: all)")
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        clf = DigitClassifier(args.model, threads=args.threads)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths, failed, results = expand(args.inputs), 0, []
    for start in range(0, len(paths), BATCH):  # a chunk at a time: a directory of 100k files stays small in memory
        good, arrays = [], []
        for path in paths[start:start + BATCH]:
            try:
                if path.is_dir():
                    raise ImageError("directory holds no files")
                arrays.append(clf.preprocess(path))
                good.append(path)
            except Exception as e:  # one bad file must not stop the rest
                failed += 1
                reason = str(e) if isinstance(e, ImageError) else f"cannot classify ({type(e).__name__}: {e})"
                print(f"{path}: {reason}", file=sys.stderr)
        try:
            preds = clf.predict_arrays(np.stack(arrays)) if arrays else []
        except Exception as e:  # a model that loads but cannot run on its own declared input
            print(f"error: model {args.model} failed to run ({str(e).strip().splitlines()[0][:200]})", file=sys.stderr)
            return 2
        for path, p in zip(good, preds):
            if args.json:
                results.append({"path": str(path), "digit": p.digit, "confidence": p.confidence,
                                "probs": [float(v) for v in p.probs]})
            else:
                print(f"{path}\t{p.digit}\t{p.confidence:.4f}")
    if args.json:
        print(json.dumps(results))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... | head`: the reader left, nothing more to say
        sys.stderr.close()
        sys.exit(1)
