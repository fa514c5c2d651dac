"""The models: ModelError, Prediction and DigitClassifier (onnxruntime, its metadata, batched inference;
predict: one digit per image, read: the whole number, its lines read whole by the line model beside it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort

from .lines import LINE
from .params import BATCH, DEFAULTS, PREPROCESSING
from .preprocess import preprocess
from .segment import _placed, read_number


class ModelError(Exception):
    """The model file cannot be used; str() is the reason, one line."""


class Prediction(NamedTuple):
    digit: int  # index of the most probable class
    label: str  # its name from the model's metadata ("0".."9")
    confidence: float  # its probability
    probs: np.ndarray  # (10,) float32, softmax over the classes


def _meta(props: dict, key: str, default):
    try:
        value = json.loads(props[key])
        return value if isinstance(value, type(default)) else default
    except (KeyError, ValueError, TypeError):
        return default


def _same_kind(value, default) -> bool:
    """A metadata value may replace a default of the same kind: a number for a number, a list of numbers."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if isinstance(default, list):
        return isinstance(value, list) and len(value) == len(default) and all(map(number, value))
    return number(value)


def _session(model: Path, threads: int | None, what: str = "model") -> ort.InferenceSession:
    if not model.is_file():
        raise ModelError(f"{what} {model} not found (or not a file)")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are not the user's business
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    try:
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # not ONNX, truncated, unsupported opset, ...: onnxruntime raises many kinds
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ModelError(f"{what} {model} cannot be loaded ({reason})") from None


def lines_beside(model: str | os.PathLike) -> Path:
    """The line model `python -m export --lines` writes beside a digit model: mnist.onnx or mnist.int8.onnx ->
    mnist.lines.onnx."""
    model = Path(model)
    return model.with_name(f"{model.name.removesuffix('.onnx').removesuffix('.int8')}.lines.onnx")


class DigitClassifier:
    """model: the digit classifier (.onnx). lines: the line model that reads a number's lines whole: True (the
    default) for the one beside the model (lines_beside) where there is one, a path for that file, False for
    none (each digit read by the classifier alone)."""

    def __init__(self, model: str | os.PathLike, threads: int | None = None, lines: bool | str | os.PathLike = True):
        model = self.model = Path(model)
        self.session = _session(model, threads)
        props = self.session.get_modelmeta().custom_metadata_map
        self.labels = [str(v) for v in _meta(props, "labels", DEFAULTS["labels"])]
        # The model's own preprocessing numbers where it has them (older exports hold only some, plus
        # descriptive strings), these defaults for the rest.
        prep = _meta(props, "preprocessing", {})
        self.params = {k: prep[k] if _same_kind(prep.get(k), v) else v for k, v in PREPROCESSING.items()}
        self.fit, self.canvas = int(self.params["fit"]), int(self.params["canvas"])
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
        self.line_model = None  # (run, line) for lines.read_line
        if lines is True and lines_beside(model).is_file() or not isinstance(lines, bool):
            self.line_model = self._line_model(lines_beside(model) if lines is True else Path(lines), threads)

    def _line_model(self, path: Path, threads: int | None):
        """(run, line) for lines.read_line, from a line model's file (its metadata's `line`, else LINE)."""
        session = _session(path, threads, "line model")
        props = session.get_modelmeta().custom_metadata_map
        got = _meta(props, "line", {})
        line = {k: got[k] if _same_kind(got.get(k), v) else v for k, v in LINE.items()}
        inp, out = session.get_inputs()[0], {o.name: o for o in session.get_outputs()}.get("probs")
        if _meta(props, "task", "") != "lines" or out is None or len(inp.shape) != 4 or inp.shape[2] != line["height"]:
            raise ModelError(f"line model {path} is not a line reader (write one with `python -m export --lines`)")

        def run(x: np.ndarray) -> np.ndarray:  # (1, 1, height, W) -> (classes, W / stride)
            try:
                return session.run(["probs"], {inp.name: x})[0][0]
            except Exception as e:
                raise ModelError(f"line model {path} failed to run ({str(e).strip().splitlines()[0][:200]})") from None
        return run, line

    def preprocess(self, image) -> np.ndarray:
        return preprocess(image, self.fit, self.canvas, self.params)

    def predict(self, images) -> list[Prediction]:
        """Paths, PIL images or arrays -> one Prediction each. A bad input raises ImageError."""
        return self.predict_arrays(np.stack([self.preprocess(i) for i in images])) if len(images) else []

    def predict_arrays(self, batch: np.ndarray) -> list[Prediction]:
        """Preprocessed (N, canvas, canvas) float32 -> N Predictions, in chunks of BATCH per session run."""
        out = []
        for start in range(0, len(batch), BATCH):
            x = np.ascontiguousarray(batch[start:start + BATCH, None], dtype=np.float32)  # (n, 1, 28, 28)
            try:
                p = self.session.run([self.output], {self.input_name: x})[0]  # (n, 10)
            except Exception as e:  # a model that loads but cannot run on its own declared input
                raise ModelError(f"model {self.model} failed to run ({str(e).strip().splitlines()[0][:200]})") from None
            if self.output != "probs":
                p = np.exp(p - p.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
            for row in p:
                k = int(row.argmax())
                out.append(Prediction(k, self.labels[k] if k < len(self.labels) else str(k), float(row[k]), row))
        return out

    def _probs(self, batch: np.ndarray) -> np.ndarray:
        """(N, canvas, canvas) float32 -> (N, classes) probabilities."""
        return np.stack([p.probs for p in self.predict_arrays(batch)]) if len(batch) else np.zeros((0, len(self.labels)), np.float32)

    def read_inputs(self, image) -> dict:
        """read(), and each digit's "input" (canvas, canvas) too, the single digit's as "input" and the
        working image's info (for --explain)."""
        x, info, lines = read_number(image, self.params, self._probs, self.line_model)
        one = self.predict_arrays(x[None])[0]  # the single most prominent digit, as predict() reads it
        if sum(map(len, lines)) <= 1:  # one digit: the single digit's own reading (its parts, its box)
            lines = [[{"input": x, "box": _placed(info["box"], info), "probs": one.probs}]]
        digits, words = [], []
        for line in lines:
            word = ""
            for dg in line:
                k = int(np.argmax(dg["probs"]))
                digits.append({"digit": k, "confidence": float(dg["probs"][k]), "probs": [float(v) for v in dg["probs"]],
                               "box": [int(v) for v in dg["box"]], "input": dg["input"]})
                word += self.labels[k] if k < len(self.labels) else str(k)
            words.append(word)
        return {"number": " ".join(words), "digits": digits, "digit": one.digit, "confidence": one.confidence,
                "probs": [float(v) for v in one.probs], "input": x, "info": info}

    def read(self, image) -> dict:
        """A path, PIL image or array -> the whole number on it: {"number": its digits, lines joined by one
        space; "digits": per digit in reading order {"digit", "confidence", "probs" (classes floats), "box":
        [x0, y0, x1, y1] in the input's pixels}; "digit", "confidence", "probs": the single most prominent
        digit, as predict() gives it}. A bad input (or a blank one: "no digit found") raises ImageError."""
        out = self.read_inputs(image)
        for dg in out["digits"]:
            del dg["input"]
        return {k: out[k] for k in ("number", "digits", "digit", "confidence", "probs")}
