"""The preprocessing in order: any image of one digit -> the 28x28 MNIST-like input the model takes.

Any photo or scan is first made to look like an MNIST digit (see _steps for the order): a grey working
image of 320-639 px (each block of a big photo its darkest pixel, so thin pen strokes survive), dark ink on light paper, the paper level taken
locally (gradients, shadows, the desk around a sheet), ruled and grid lines and specks left out, the
darkest plausible digit kept; then as MNIST itself was made: cropped to the digit, its longer side
scaled to 20 px, pasted on a 28x28 canvas with its centre of mass at the centre, light on dark in [0, 1].
Every number of it is in PREPROCESSING (params.py), which the exported model carries in its metadata.
"""

from __future__ import annotations

import numpy as np

from .filters import _border, _box3, _odd
from .image import ImageError, _factor, _grey, _shrink
from .marks import _digit, _marks, _paint
from .mnist import _mnist, _stroke
from .paper import _darkness, _desk, _desk_frame, _polarities
from .params import PREPROCESSING
from .rules import _threshold


def _with(error: ImageError, info: dict) -> ImageError:
    error.info = info  # what the steps saw before they gave up, for --explain
    return error


def _polar(image, p: dict, reader):
    """Steps 1-2, then reader(g, inverted, p, unsure, frame) on the grey working image of dark ink on light
    paper: the single digit (_read) or the number (segment.py). frame = (the reduction factor, the input's
    (H, W)), to map the working image's pixels back to the input's."""
    return _polar_grey(_grey(image, p["luma"]), p, reader)


def _polar_grey(a: np.ndarray, p: dict, reader):
    """_polar on the input already grey: a (H, W) float32 in [0, 1] (segment.py reads a crop of it again)."""
    # 1. Grey working image, (H, W) in [0, 1], longer side work..2*work-1 px (or smaller if the input is),
    #    each f x f block its darkest pixel: thin dark strokes survive the reduction.
    f = _factor(a.shape, int(p["work"]))
    g = _shrink(a, f, np.minimum)
    # 2. Polarity: make it dark ink on light paper (when unsure, the second reading if the first finds no digit).
    #    Light ink is reduced by its lightest pixel instead, then inverted.
    readings = _polarities(g, _odd(p["polarity_window"] * min(g.shape), 3), p)
    for i, inverted in enumerate(readings):
        try:
            return reader(1.0 - _shrink(a, f, np.maximum) if inverted else g, inverted, p, len(readings) > 1, (f, a.shape))
        except ImageError:
            if i == len(readings) - 1:
                raise


def _steps(image, p: dict) -> tuple[np.ndarray, dict]:
    """The whole preprocessing, in order -> float32 (canvas, canvas) and what it found (for --explain)."""
    return _polar(image, p, _read)


def _ink(g: np.ndarray, inverted: bool, p: dict, frame=(1, None)) -> dict:
    """Steps 3-5 on a grey (H, W) image of dark ink on light paper -> {"d", "d3": darkness (H, W) with the
    desk cleared, "t": the darkness ink exceeds, "paper": the paper level (H, W), "desk": paper when the
    frame shows desk (else None, for the marks' desk test), "info": what was found, for --explain}."""
    # 3. Paper level, locally (a grey closing, JPEG ringing beside a dark desk opened away first), and the
    #    darkness relative to it.
    paper, d = _darkness(g, p)  # (H, W) each
    d3 = _box3(d)  # (H, W) 3x3 mean darkness: what is ink is decided on it (noise, pencil grain and
    #                hairlines average out; strokes 3 px wide keep their darkness)
    info = {"gray": g, "inverted": inverted, "box": None, "factor": frame[0], "shape": frame[1]}
    # 4. The sheet: where the frame shows desk beside the sheet, the closing fills the strips of desk
    #    narrower than paper_window as if they were ink, and the desk's grain just off the sheet's edge reads as ink
    #    against the sheet's level. Such marks touch the frame's edge along their length, or lie at a
    #    step of the paper level: drop them. A desk shows in the frame when the paper level along
    #    desk_frame % of the frame's edge is far below its top (otherwise the step test is off).
    desk_frame = _desk_frame(paper, p)
    m = _marks(d3 > p["min_ink"], d3, paper if desk_frame else None, p)
    desk = _paint(m, _desk(m, p), d.shape)
    d[desk], d3[desk] = 0, 0
    peak = float(d3.max())
    if peak < p["min_ink"]:
        raise _with(ImageError("no digit found (blank image)"), info)
    # 5. Ruled and grid lines: when present, ink must be clearly darker than they are.
    try:
        t = _threshold(d3, peak, p)
    except ImageError as e:
        raise _with(e, info) from None
    return {"d": d, "d3": d3, "t": t, "paper": paper, "desk": paper if desk_frame else None, "info": info}


def _one(ink: dict, p: dict, unsure: bool, marks=None) -> np.ndarray:
    """Step 6 for one digit: (H, W) bool, the best-scoring mark darker than t (specks and desk edges
    dropped) and its parts; ImageError (with the info) when there is none (`marks`: _plausible's answer)."""
    info, paper = ink["info"], ink["paper"]
    try:
        mask = _digit(ink["d3"], ink["t"], ink["desk"], p, marks)
    except ImageError as e:
        raise _with(e, info) from None
    if unsure and info["inverted"] and float(paper[mask].mean()) < p["unsure_ground"] * float(np.median(_border(paper))):
        # Light ink lies on the dark ground the frame shows. A "light digit" on a ground far lighter than
        # the frame's (here: a paper level far below it) is a lit part of a sheet broken up by shadow.
        raise _with(ImageError("no digit found (blank image)"), info)
    return mask


def _cut(ink: dict, mask: np.ndarray, box, e: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The ink of `mask` (H, W) bool, cut to its box (y0, x0, y1, x1) grown by e px each way (within the
    image) -> its darkness over the threshold up to the mask's own peak (the peak's value 1), 0 outside the
    mask, (h, w) float32; the mask cut alike; the cut's corner (y, x) in working px."""
    d, t = ink["d"], ink["t"]
    y0, x0, y1, x1 = box
    cy0, cx0, cy1, cx1 = max(y0 - e, 0), max(x0 - e, 0), min(y1 + e, d.shape[0]), min(x1 + e, d.shape[1])
    sub = mask[cy0:cy1, cx0:cx1]
    peak = float(ink["d3"][cy0:cy1, cx0:cx1][sub].max())  # the mask's own peak: its value 1
    x = np.where(sub, np.clip((d[cy0:cy1, cx0:cx1] - t) / max(peak - t, 1e-6), 0, 1), 0).astype(np.float32)
    return x, sub, cy0, cx0


def _input(ink: dict, mask: np.ndarray, p: dict) -> tuple[np.ndarray, tuple]:
    """Step 7 for the digit in `mask` (H, W) bool -> its float32 (canvas, canvas) and its box (y0, x0, y1,
    x1) in working pixels (ends exclusive)."""
    fit, canvas = int(p["fit"]), int(p["canvas"])
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    # Work on the box grown by its longer side + 2 px: _stroke's running max and min reach less far than
    # that, and outside the mask x is 0, so the crop changes no value (a number's digits each cost their
    # own box, not the whole image).
    x, sub, cy0, cx0 = _cut(ink, mask, (y0, x0, y1, x1), max(y1 - y0, x1 - x0) + 2)
    # 7. MNIST's own steps: strokes near MNIST's width, longer side to `fit` px, values to peak 1,
    #    centre of mass at the canvas centre.
    box = (y0 - cy0, x0 - cx0, y1 - cy0, x1 - cx0)
    return _mnist(_stroke(x, sub, box, fit, p), fit, canvas), (y0, x0, y1, x1)


def _read(g: np.ndarray, inverted: bool, p: dict, unsure: bool = False, frame=(1, None)) -> tuple[np.ndarray, dict]:
    """Steps 3-7 on a grey (H, W) image of dark ink on light paper (`unsure`: one of two polarities tried)."""
    ink = _ink(g, inverted, p, frame)
    x, box = _input(ink, _one(ink, p, unsure), p)
    ink["info"]["box"] = box
    return x, ink["info"]


def preprocess(image, fit: int = 20, canvas: int = 28, params: dict | None = None) -> np.ndarray:
    """Any image of one digit -> float32 (canvas, canvas) in [0, 1], light digit on dark, as in MNIST."""
    return _steps(image, {**PREPROCESSING, **(params or {}), "fit": fit, "canvas": canvas})[0]
