"""A number's lines read whole by the line model (`python -m export --lines`: mnist.lines.onnx, a CTC reader of
lines of MNIST digits). Twin: web/lines.js.

segment.py finds the digits of each line (their boxes) and the digit classifier reads them one by one; where a
line model is at hand, each line is read again, whole, as the model was trained to read it:
  - its ink: the pixels of ink (d3 > t) inside its digits' boxes, as darkness over the threshold up to the
    line's own peak (0..1), its strokes brought to MNIST's width at the scale where the line's ink is
    ink_height px tall (as _stroke does for one digit at `fit`);
  - levelled: each column moved up or down along the slope of the digits' centres (a line written uphill);
  - cropped to its ink (> ink), `pad` px per ink_height px of it around, scaled to `height` px tall
    (filters._resample, PIL's BILINEAR, as the training lines were);
  - read: (classes, width / stride) probabilities, decoded greedily (the likeliest class per column,
    repeats merged, blanks dropped); each digit's ten probabilities are its likeliest column's, over the
    digits (the blank left out);
  - as many digits as segment.py found: each keeps segment.py's box (cut along the ink, it fits slanted
    neighbours better than columns can) and 28x28, and its probabilities are both models' product,
    renormalised (two readers of one digit, each right where the other slips);
  - a different count: segment.py's digits are kept where the line model itself finds them nearly as
    likely as its own reading (CTC's probability of each digit string, summed over every alignment, within
    a factor of e^keep): greedy decoding misses two equal neighbours with no blank column between them (a
    1 is 1-2 columns wide) and now and then inserts a 1 at a gap; otherwise the line's ink is cut into
    columns halfway between the digits' columns, and each digit's box is its part's.
A line the model reads as no digit at all keeps segment.py's reading, and a single digit is read as itself
(docs/edge.md has the figures).
"""

from __future__ import annotations

import numpy as np

from .filters import _max2, _min2, _resample
from .mnist import _stroke_width
from .preprocess import _cut, _input
from .image import ImageError

# How a line is made for the line model, as src/line_data.py makes its training lines: the line model's
# metadata (`line`) holds these; a model without them gets these.
LINE = {"height": 32, "stride": 4, "blank": 10, "ink": 0.08, "pad": 2, "ink_height": 24, "keep": 4.0}


def _ink_of(ink: dict, mask: np.ndarray, p: dict, line: dict) -> tuple[np.ndarray, int, int]:
    """The line's ink in `mask` (H, W) bool -> (h, w) float32 in [0, 1], its strokes at MNIST's width, and the
    (y, x) of its corner in working px."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    tall = y1 - y0
    # Grown by tall + 2 px: farther than _max2 and _min2 reach below (outside the mask x is 0: no value changes).
    x, sub, cy0, cx0 = _cut(ink, mask, (y0, x0, y1, x1), tall + 2)
    # Strokes as _stroke brings a digit's, at the scale where the line's ink is ink_height px tall (a training
    # line's median: 20 px digits, their sizes and drift).
    scale = tall / line["ink_height"]
    width = _stroke_width(sub)  # px
    grow = int(np.floor(p["stroke"] * scale - width + 0.5))
    if width > p["stroke_max"] * p["stroke"] * scale and tall >= 2 * line["ink_height"]:
        x = _min2(x, int(p["thin"] * -grow) + 1)
    if grow > 0:
        x = _max2(x, grow + 1)
    return x, cy0, cx0


def _level(x: np.ndarray, slope: float) -> np.ndarray:
    """(h, w) -> (h + 2m, w): column c moved down by round(-slope x (c - w / 2)) px (m the most any moves), so
    that ink along a line of that slope (px down per px right) lies level."""
    if not slope:
        return x
    h, w = x.shape
    shift = np.floor(-slope * (np.arange(w) - w / 2) + 0.5).astype(int)
    m = int(np.abs(shift).max())
    out = np.zeros((h + 2 * m, w), np.float32)
    for c in range(w):
        out[m + shift[c]:m + shift[c] + h, c] = x[:, c]
    return out


def _strip(x: np.ndarray, line: dict) -> tuple[np.ndarray, float, float, int]:
    """A levelled line (h, w) -> the model's input (height, W) float32 (W a multiple of stride, zeros on the
    right); how its columns map back: x = X x `per` + `at` (X along the input, x along the line's (h, w)); and
    the model's output columns that are the line's own (the rest read the zeros)."""
    ys, xs = np.nonzero(x > line["ink"])
    a = x[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    pad = max(1, int(np.floor(line["pad"] * a.shape[0] / line["ink_height"] + 0.5)))
    a = np.pad(a, pad)
    h, w = a.shape
    height, stride = int(line["height"]), int(line["stride"])
    out_w = max(stride, int(np.floor(w * height / h + 0.5)))
    a = _resample(a, height, out_w)  # (height, out_w)
    strip = np.zeros((height, -(-out_w // stride) * stride), np.float32)
    strip[:, :out_w] = a
    return strip, w / out_w, float(xs.min() - pad), out_w // stride


def _decode(probs: np.ndarray, blank: int) -> list[tuple[int, int, int, int]]:
    """(classes, T) probabilities -> the digits read, left to right: (class, first column, last column, the
    column where the class is likeliest), the likeliest class per column with repeats merged, blanks dropped."""
    best = probs.argmax(axis=0)
    out = []
    for t, c in enumerate(best.tolist()):
        if c == blank:
            continue
        if t and best[t - 1] == c:  # the same digit, one column on
            k, first, _, peak = out[-1]
            out[-1] = (k, first, t, t if probs[c, t] > probs[c, peak] else peak)
        else:
            out.append((c, t, t, t))
    return out


def _ctc(probs: np.ndarray, digits: list[int], blank: int) -> float:
    """log P(digits | probs) as CTC defines it: (classes, T) probabilities summed over every alignment of
    the digit string to the T columns (the forward algorithm, in logs; float64)."""
    lp = np.log(np.maximum(probs.astype(np.float64), 1e-30))  # (classes, T), as web/lines.js takes them
    ext = np.array([blank] + [c for d in digits for c in (d, blank)])  # (S,): blanks around and between
    S, T = len(ext), lp.shape[1]
    skip = np.zeros(S, bool)  # a digit may follow the digit before it directly, but not an equal one
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    a = np.full(S, -np.inf)
    a[:2] = lp[ext[:2], 0]
    for t in range(1, T):
        b = a.copy()
        b[1:] = np.logaddexp(b[1:], a[:-1])
        b[2:][skip[2:]] = np.logaddexp(b[2:][skip[2:]], a[:-2][skip[2:]])
        a = b + lp[ext, t]
    return float(np.logaddexp(a[-1], a[-2])) if S > 1 else float(a[-1])


def _line_mask(ink: dict, boxes) -> np.ndarray:
    """The ink (d3 > t) inside a line's digits' boxes (y0, x0, y1, x1): (H, W) bool."""
    inside = np.zeros(ink["d"].shape, bool)
    for y0, x0, y1, x1 in boxes:
        inside[y0:y1, x0:x1] = True
    return inside & (ink["d3"] > ink["t"])


def _slope(boxes) -> float:
    """The slope (px down per px right) of the line through the digits' centres (least squares), 0 for two or
    fewer: two digits' centres tilt with their shapes as much as with the line."""
    b = np.array(boxes, np.float64)
    cx, cy = (b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2
    if len(b) < 3 or np.ptp(cx) == 0:
        return 0.0
    cx = cx - cx.mean()
    return float((cx * (cy - cy.mean())).sum() / (cx * cx).sum())


def read_line(ink: dict, digits: list[dict], p: dict, model) -> list[dict]:
    """A line's digits as segment._digits gives them ({"input", "box": (y0, x0, y1, x1) working px, "probs"})
    -> the line as the line model reads it, in the same form. model: (run, line): run takes a (1, 1, height, W)
    float32 input to (classes, W / stride) probabilities; line is the model's LINE."""
    run, line = model
    boxes = [dg["box"] for dg in digits]
    mask = _line_mask(ink, boxes)
    if not mask.any():
        return digits
    x, cy0, cx0 = _ink_of(ink, mask, p, line)
    strip, per, at, columns = _strip(_level(x, _slope(boxes)), line)
    probs = run(strip[None, None])[:, :columns]  # (classes, columns)
    read = _decode(probs, int(line["blank"]))
    if not read:
        return digits
    if len(read) != len(digits):
        mine, blank = [int(dg["probs"].argmax()) for dg in digits], int(line["blank"])
        if _ctc(probs, mine, blank) + line["keep"] >= _ctc(probs, [r[0] for r in read], blank):
            return digits
    out = []
    for _, first, last, peak in read:
        ten = probs[:10, peak] / probs[:10, peak].sum()  # over the digits: the blank left out
        out.append({"probs": ten.astype(np.float32), "columns": (first, last)})
    if len(out) == len(digits):  # the same digits: segment.py's boxes and inputs, both models' probabilities
        for dg, new in zip(digits, out):
            both = np.maximum(new["probs"], 1e-30, dtype=np.float64) * np.maximum(dg["probs"], 1e-30)
            new.update(input=dg["input"], box=dg["box"], probs=(both / both.sum()).astype(np.float32))
    else:  # the line's ink cut halfway between the digits' columns
        stride = int(line["stride"])
        centres = [cx0 + at + ((a + b + 1) / 2 * stride) * per for a, b in (o["columns"] for o in out)]
        cuts = [-np.inf] + [(l + r) / 2 for l, r in zip(centres, centres[1:])] + [np.inf]
        cols = np.arange(mask.shape[1])
        for k, new in enumerate(out):
            part = mask & ((cols >= cuts[k]) & (cols < cuts[k + 1]))[None, :]
            try:
                new["input"], new["box"] = _input(ink, part, p) if part.any() else (None, None)
            except ImageError:  # ink no darker than t there
                new["input"], new["box"] = None, None
            if new["box"] is None:  # no ink in its columns: its columns, the line's height
                ys = np.nonzero(mask.any(axis=1))[0]
                x0 = int(np.clip(np.floor(centres[k] - stride * per / 2), 0, mask.shape[1] - 1))
                new["input"] = np.zeros((int(p["canvas"]),) * 2, np.float32)
                new["box"] = (int(ys[0]), x0, int(ys[-1]) + 1, min(x0 + max(1, int(stride * per)), mask.shape[1]))
    for new in out:
        del new["columns"]
    return out


def read_lines(ink: dict, lines: list[list[dict]], p: dict, model) -> list[list[dict]]:
    """Each line of a number read whole (read_line); as they are without a line model (model None), or when
    they hold one digit: a single digit reads as itself, as predict() reads it (the line model would read a
    few single digits, a broken 1 or a 0 with a speck, as two)."""
    if model is None or sum(map(len, lines)) < 2:
        return lines
    return [read_line(ink, line, p, model) if line else line for line in lines]
