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

Any photo or scan is first made to look like an MNIST digit (see _steps for the order): a grey working
image of 320-639 px (a JPEG decoded at 1/2-1/8 scale), dark ink on light paper, the paper level taken
locally (gradients, shadows, the desk around a sheet), ruled and grid lines and specks left out, the
darkest plausible digit kept; then as MNIST itself was made: cropped to the digit, its longer side
scaled to 20 px, pasted on a 28x28 canvas with its centre of mass at the centre, light on dark in [0, 1].
Every number of it is in PREPROCESSING, which the exported model carries in its metadata.
`--explain DIR` writes, per input, a picture of what the steps found and the 28x28 the model saw.
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
BATCH = 256
# Every number of the preprocessing, defined once. export/onnx_export.py writes this dict into the model's
# metadata (`preprocessing`); DigitClassifier reads it back from there (these are the defaults for models
# exported without them), and so does the browser page: one set of numbers, not two copies.
# "of the short side" = a fraction of the working image's shorter side, in pixels after rounding.
PREPROCESSING = {
    "fit": 20,  # the digit's longer side is scaled to 20 px ...
    "canvas": 28,  # ... and pasted on a 28x28 canvas with its centre of mass at the centre
    "work": 320,  # working image: box-reduced by floor(longer side / 320), so its longer side is 320-639 px
    "luma": [0.299, 0.587, 0.114],  # ITU-R 601 luma of RGB (what a JPEG stores as Y)
    "polarity_window": 0.3,  # light ink on dark: the frame is dark and no bright region is this wide (of the short side)
    "polarity_min_side": 64,  # ... (images with a shorter side under 64 px: the dark frame decides alone)
    "sheet_wide": [0.5, 0.75],  # ... bright parts that wide: under 50% light ink, 50-75% try both, over: a sheet
    "paper_window": 0.3,  # paper level: grey closing (max, then min) over a square this wide (of the short side)
    "paper_speck": 3,  # ... bright lines under 3 px wide do not count as paper ...
    "speck_dark": 0.5,  # ... beside a pixel under 0.5 x as bright (JPEG ringing at a sheet's edge on a dark desk)
    "paper_floor": 0.45,  # darkness = (paper - pixel) / max(paper, 0.45): a dark desk does not magnify noise
    "min_ink": 0.25,  # the darkest 3x3 mean must be >= 0.25 (25% darker than its paper), else no digit
    "ink_rel": 0.25,  # ink: darkness above 0.25 x that peak ...
    "line_noise": 0.07,  # rules: pixels of darkness above this ...
    "line_thin": 0.02,  # ... in runs across the rule of at most this (of the short side, at least 4 px) ...
    "line_length": 0.15,  # ... that continue along it for at least this (of the short side, at least 40 px) ...
    "line_tilt": 10,  # ... within +-10 degrees of horizontal or vertical ...
    "line_gap": 5,  # ... bridging gaps of up to 4 px along it (a window of 5 px)
    "line_min": 0.5,  # ruled or grid paper: at least 0.5 x (height + width) such pixels
    "line_percentile": 95,  # ... the rules' darkness: the 95th percentile of those pixels' darkness ...
    "line_contrast": 1.5,  # ... a peak below 1.5 x that is a blank ruled page ...
    "line_margin": 1.4,  # ... else ink must be darker than 1.4 x the rules ...
    "line_max_rel": 0.75,  # ... but that threshold never exceeds 0.75 x the peak
    "min_size": 0.05,  # a digit spans at least 5% of the short side (at least 3 px); smaller marks are specks
    "min_thickness": 0.04,  # ... and its area is at least 0.04 x its longer side squared: thinner are rules, edges, hairs
    "mark_peak": 0.5,  # ... and its darkest pixel is at least half as dark as the darkest such mark's ...
    "mark_ink": 0.3,  # ... and at least this dark (desk grain, shadowed rules of a blank page stay below)
    "border_contact": 0.4,  # a mark touching the frame along more than 0.4 x its box's longer side is desk ...
    "edge": 0.01,  # ... touching = within this of the frame's edge (of the short side, at least 1 px) ...
    "desk_step": 0.75,  # ... or a mark within desk_reach px of a drop in the paper level to below 0.75 x its own (a sheet's edge)
    "desk_reach": 8,  # px
    "desk_ground": 0.1,  # ... or at such a step either way, when the ground around it is this dark (paper is ~0)
    "desk_frame": 2,  # ... a test made when the 2nd percentile of the paper level along the frame is below desk_step x its top
    "unsure_ground": 0.75,  # polarity unsure, light-ink reading: the digit's ground must be >= 0.75 x as dark as the frame's
    "centre_weight": 2.0,  # the digit: most ink / (1 + 2 x distance of its centre from the image centre / short side)
    "merge": 0.25,  # marks whose box reaches into the digit's box grown by 25% of its longer side belong to it ...
    "merge_min": 0.02,  # ... when they hold at least 2% of its ink
}
DEFAULTS = {"labels": [str(d) for d in range(10)], "preprocessing": PREPROCESSING}


class ImageError(ValueError):
    """One input cannot be classified; str() is the reason, one line."""


class ModelError(Exception):
    """The model file cannot be used; str() is the reason, one line."""


class Prediction(NamedTuple):
    digit: int  # index of the most probable class
    label: str  # its name from the model's metadata ("0".."9")
    confidence: float  # its probability
    probs: np.ndarray  # (10,) float32, softmax over the classes


def load_image(path: str | os.PathLike, work: int | None = None) -> Image.Image:
    """Open and fully decode a file, turning every way it can fail into an ImageError.

    With `work`, a JPEG is decoded as grey (its Y channel) at 1/2, 1/4 or 1/8 scale in the DCT domain
    (PIL's draft mode), as small as keeps its longer side >= work: a 12 MP photo decodes 10x faster."""
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
                if work and img.format == "JPEG":
                    img.draft("L", (-(-img.width * work // max(img.size)), -(-img.height * work // max(img.size))))
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


def _reduce(a: np.ndarray, f: int) -> np.ndarray:
    """Box mean over f x f blocks, (H, W) -> (ceil(H/f), ceil(W/f)); edge blocks average the pixels they have
    (what PIL's Image.reduce does)."""
    if f <= 1:
        return a
    h, w = a.shape
    H, W = -(-h // f) * f, -(-w // f) * f
    sums = np.pad(a, ((0, H - h), (0, W - w))).reshape(H // f, f, W // f, f).sum(axis=(1, 3))
    counts = np.pad(np.ones_like(a), ((0, H - h), (0, W - w))).reshape(H // f, f, W // f, f).sum(axis=(1, 3))
    return (sums / counts).astype(np.float32)


def to_gray(image, work: int | None = None, luma=PREPROCESSING["luma"]) -> np.ndarray:
    """A path, PIL image or array -> float32 (H, W) in [0, 1], the image as it looks (not yet inverted).

    With `work`, box-reduced by the whole factor floor(longer side / work) (none below 2 x work), so the
    longer side ends between work and 2 x work - 1 pixels: the working image of the preprocessing."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image, work)
    f = 1
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
        if work and max(img.size) >= 2 * work:  # box-average big photos first: a 20 px digit needs no 12 MP
            img = img.reduce(max(img.size) // work)
        a = np.asarray(img).astype(np.float32) / full if full else np.asarray(img)  # (H, W) or (H, W, 4)
    else:
        a = np.asarray(image)
        f = max(1, max(a.shape[:2]) // work) if work and a.ndim >= 2 else 1
    if a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        x = _scale(a)
        alpha = x[..., -1] if a.shape[2] in (2, 4) else None
        rgb = x[..., :3] if a.shape[2] >= 3 else x[..., :1]
        y = rgb @ np.array(luma, np.float32) if rgb.shape[2] == 3 else rgb[..., 0]  # ITU-R 601 luma
        return _reduce(_composite(y, alpha) if alpha is not None and alpha.min() < 1 else y, f)
    if a.ndim != 2 or min(a.shape) == 0:
        raise ImageError(f"unsupported image shape {a.shape}: expected (H, W) gray or (H, W, 3|4) colour")
    return _reduce(_scale(a), f)


def _border(x: np.ndarray) -> np.ndarray:
    k = max(1, min(x.shape) // 20)  # a frame 5% deep: paper in nearly every photo or scan
    return np.concatenate([x[:k].ravel(), x[-k:].ravel(), x[:, :k].ravel(), x[:, -k:].ravel()])


def _odd(v: float, least: int = 1) -> int:
    """A window width in pixels: round half up, odd (centred), at least `least`."""
    k = max(least, int(np.floor(v + 0.5)))
    return k if k % 2 else k + 1


def _run(a: np.ndarray, k: int, axis: int, op) -> np.ndarray:
    """Running max (op=np.maximum) or min (np.minimum) over a centred window of k pixels along `axis`, the
    window cut at the image edges. Doubling: after the loop m[i] covers `span` pixels, two of them cover k."""
    if k <= 1:
        return a
    a = np.swapaxes(a, 0, axis)
    n, r = a.shape[0], (k - 1) // 2
    fill = -np.inf if op is np.maximum else np.inf
    m = np.concatenate([np.full((r, *a.shape[1:]), fill, a.dtype), a, np.full((k - 1 - r, *a.shape[1:]), fill, a.dtype)])
    span = 1
    while 2 * span <= k:
        m = op(m[:-span], m[span:])
        span *= 2
    return np.swapaxes(op(m[:n], m[k - span:k - span + n]), 0, axis)


def _max2(a, k):  # square k x k running max, (H, W)
    return _run(_run(a, k, 0, np.maximum), k, 1, np.maximum)


def _min2(a, k):
    return _run(_run(a, k, 0, np.minimum), k, 1, np.minimum)


def _open1(a, k, axis):
    """1-D opening: keeps the pixels of runs at least k long along `axis` (a: 0/1 float32)."""
    return _run(_run(a, k, axis, np.minimum), k, axis, np.maximum)


def _box3(a: np.ndarray) -> np.ndarray:
    """3x3 mean, edges replicated; (H, W)."""
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9


def _polarities(g: np.ndarray, k: int, p: dict) -> list[bool]:
    """Polarity, as the readings to try in order (True = light ink on a dark ground, invert it). A light
    frame: dark ink on paper. A dark frame: light ink, unless (in images with a shorter side of
    polarity_min_side px or more) most of the bright part is k px wide, as a sheet on a desk is; in
    between (a very bold digit, a sheet broken up by shadow) try dark ink first, then light."""
    lo, hi = float(g.min()), float(g.max())
    if hi <= lo or np.median(_border(g)) > (lo + hi) / 2:
        return [False]
    if min(g.shape) < p["polarity_min_side"]:  # a crop or an icon, not a photo of a sheet on a desk
        return [True]
    kc = _odd(k / 4, 3)  # first close gaps this narrow: rules, grid lines and ink do not break a sheet up
    bright = (_min2(_max2(g, kc), kc) > (lo + hi) / 2).astype(np.float32)
    wide = _max2(_min2(bright, k), k)  # opening: bright regions at least k x k survive
    survive = float(wide[bright > 0].mean())
    return [True] if survive < p["sheet_wide"][0] else [False, True] if survive < p["sheet_wide"][1] else [False]


def _lines(d: np.ndarray, p: dict) -> np.ndarray:
    """(H, W) bool: pixels of ruled or grid lines: thin across, long along a row or column (+-tilt)."""
    s = min(d.shape)
    thin = max(4, int(np.floor(p["line_thin"] * s + 0.5)))  # px across
    length = max(40, int(np.floor(p["line_length"] * s + 0.5)))  # px along
    tol = _odd(length * np.tan(np.radians(p["line_tilt"])), 3)  # a tilted rule drifts this much across
    c = (d > p["line_noise"]).astype(np.float32)
    out = np.zeros(d.shape, bool)
    for along in (1, 0):  # horizontal rules run along axis 1 (rows), vertical ones along axis 0
        across = 1 - along
        if d.shape[along] < length:  # too small to hold a rule
            continue
        t = c * (1 - _open1(c, thin + 1, across))  # in runs across no longer than `thin`
        band = _run(_run(t, tol, across, np.maximum), p["line_gap"], along, np.maximum)
        out |= (t * _open1(band, length, along)) > 0
    return out


def _components(mask: np.ndarray):
    """8-connected components of a (H, W) bool mask, by runs: -> (rows, starts, ends, comp) per run (ends
    exclusive) and the number of components. Runs in row-major order; a component is numbered by its first run."""
    h, w = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)  # (H, W + 1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]
    n = len(rows)
    if n == 0:
        return rows, starts, ends, np.zeros(0, np.int64), 0
    # Run a (row r) touches run b (row r + 1) when b.start <= a.end and a.start <= b.end (diagonals count).
    key_s, key_e = rows * (w + 2) + starts, rows * (w + 2) + ends  # sorted, runs do not overlap in a row
    lo = np.searchsorted(key_e, (rows + 1) * (w + 2) + starts, "left")
    hi = np.searchsorted(key_s, (rows + 1) * (w + 2) + ends, "right")
    count = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(n), count)
    b = lo[a] + (np.arange(len(a)) - np.repeat(np.cumsum(count) - count, count))
    parent = np.arange(n)
    while True:  # union by smallest index, with pointer jumping, until stable
        m = np.minimum(parent[a], parent[b])
        new = parent.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]
        if np.array_equal(new, parent):
            break
        parent = new
    roots, comp = np.unique(parent, return_inverse=True)
    return rows, starts, ends, comp, len(roots)


def _marks(mask: np.ndarray, d: np.ndarray, paper: np.ndarray | None, p: dict) -> dict:
    """Per 8-connected mark of a (H, W) bool mask: its runs and, per mark, area (px), ink mass (summed d),
    centre, box (y0, x0, y1, x1; ends exclusive), longer box side, pixels on the frame's edge and the
    steepest step of the paper level beside it."""
    h, w = mask.shape
    rows, starts, ends, comp, n = _components(mask)
    length = ends - starts
    csum = np.pad(np.cumsum(d, axis=1), ((0, 0), (1, 0)))  # (H, W + 1) row prefix sums of darkness
    m = {"rows": rows, "starts": starts, "ends": ends, "comp": comp, "n": n,
         "area": np.bincount(comp, length, n), "mass": np.bincount(comp, csum[rows, ends] - csum[rows, starts], n)}
    m["cy"] = np.bincount(comp, rows * length, n) / np.maximum(m["area"], 1)
    m["cx"] = np.bincount(comp, (starts + ends - 1) / 2 * length, n) / np.maximum(m["area"], 1)
    y0, x0, y1, x1 = np.full(n, h), np.full(n, w), np.zeros(n, int), np.zeros(n, int)
    np.minimum.at(y0, comp, rows)
    np.maximum.at(y1, comp, rows + 1)
    np.minimum.at(x0, comp, starts)
    np.maximum.at(x1, comp, ends)
    m.update(y0=y0, x0=x0, y1=y1, x1=x1, side=np.maximum(y1 - y0, x1 - x0))
    # Each mark's darkest pixel: expand the runs to pixels (row, col, mark).
    pr = np.repeat(rows, length)
    pc = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length) + np.repeat(starts, length)
    m["pixels"] = (pr, pc, np.repeat(comp, length))
    m["peak"] = np.zeros(n)
    np.maximum.at(m["peak"], m["pixels"][2], d[pr, pc])
    # Frame contact, px along the frame: its pixels within e px of the frame's edge, / e (a strip of desk
    # beside a sheet edge that runs almost along the frame's edge touches it through this margin).
    e = max(1, int(np.floor(p["edge"] * min(h, w) + 0.5)))
    near = (pr < e) | (pr >= h - e) | (pc < e) | (pc >= w - e)
    at_edge = np.bincount(m["pixels"][2], near, n)
    m["contact"] = at_edge / e
    m["rim"] = at_edge >= m["area"]  # all of it within that margin: a sliver of desk at a corner, a JPEG edge
    # The paper level next to the mark, within desk_reach px: its steepest drop (the darkest level there /
    # the level under the mark) and its steepest step either way (the darkest / the brightest there). Ink
    # lies on paper whose level changes slowly. Desk filled in beside a sheet's edge borders unfilled desk,
    # far darker (a drop); grain of the desk just off the sheet's edge borders the sheet, far brighter
    # (a step up), but so may ink in a shadow: there the ground around the mark tells them apart.
    m["drop"], m["step"], m["ground"] = np.ones(n), np.ones(n), np.zeros(n)
    if paper is not None:  # None: the frame shows no desk
        win = 2 * int(p["desk_reach"]) + 1
        low = _min2(paper, win)
        np.minimum.at(m["drop"], m["pixels"][2], (low / np.maximum(paper, 1e-6))[pr, pc])
        np.minimum.at(m["step"], m["pixels"][2], (low / np.maximum(_max2(paper, win), 1e-6))[pr, pc])
        # The ground: mean darkness of the pixels in the mark's box that are not the mark's. Paper around
        # ink is near 0; desk around its grain is as dark as the grain nearly is.
        ii = np.pad(np.cumsum(np.cumsum(d, axis=0, dtype=np.float64), axis=1), ((1, 0), (1, 0)))  # (H + 1, W + 1)
        inbox = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
        m["ground"] = (inbox - m["mass"]) / np.maximum((y1 - y0) * (x1 - x0) - m["area"], 1)
    return m


def _paint(m: dict, keep: np.ndarray, shape) -> np.ndarray:
    """(H, W) bool: the pixels of the marks where keep (n,) is True."""
    out = np.zeros(shape, bool)
    pr, pc, lab = m["pixels"]
    sel = keep[lab]
    out[pr[sel], pc[sel]] = True
    return out


def _desk(m: dict, p: dict) -> np.ndarray:
    """(n,) bool: desk, not ink on the sheet: marks that touch the frame along more than border_contact x
    their longer side or lie wholly at its edge, that border a paper level below desk_step x their own
    (a sheet's edge, seen from the sheet), or that lie at such a step either way on a ground at least
    desk_ground dark (a sheet's edge, seen from the desk)."""
    step = (m["step"] < p["desk_step"]) & (m["ground"] >= p["desk_ground"])
    return (m["contact"] > p["border_contact"] * m["side"]) | m["rim"] | (m["drop"] < p["desk_step"]) | step


def _digit(d: np.ndarray, t: float, paper: np.ndarray | None, p: dict) -> np.ndarray:
    """(H, W) bool: the marks darker than t that make the digit, or ImageError when none is plausible."""
    h, w = d.shape
    s = min(h, w)
    m = _marks(d > t, d, paper, p)
    if m["n"] == 0:
        raise ImageError("no digit found (blank image)")
    side, area, inside = m["side"], m["area"], ~_desk(m, p)
    ok = (side >= max(3, p["min_size"] * s)) & (area >= p["min_thickness"] * side**2) & inside
    ok &= m["peak"] >= max(p["mark_ink"], p["mark_peak"] * float(m["peak"][ok].max(initial=0)))
    if not ok.any():
        raise ImageError("no digit found (blank image)")
    r = np.hypot(m["cy"] - (h - 1) / 2, m["cx"] - (w - 1) / 2) / s
    score = np.where(ok, m["mass"] / (1 + p["centre_weight"] * r), -1)
    best = int(np.argmax(score))
    g = p["merge"] * side[best]
    y0, x0, y1, x1 = m["y0"], m["x0"], m["y1"], m["x1"]
    near = inside & (y1 > y0[best] - g) & (y0 < y1[best] + g) \
        & (x1 > x0[best] - g) & (x0 < x1[best] + g)  # boxes overlap the digit's, grown by g on each side
    keep = near & (m["mass"] >= p["merge_min"] * m["mass"][best])
    keep[best] = True
    return _paint(m, keep, d.shape)


def _weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) resampling matrix: a triangle filter (bilinear) widened by the shrink factor, so it
    interpolates when enlarging and averages (antialiased) when shrinking; rows sum to 1. PIL's BILINEAR."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale  # output pixel centres in input pixel units
    wts = np.clip(1 - np.abs(np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support, 0, None)
    return (wts / wts.sum(axis=1, keepdims=True)).astype(np.float32)


def _with(error: ImageError, info: dict) -> ImageError:
    error.info = info  # what the steps saw before they gave up, for --explain
    return error


def _steps(image, p: dict) -> tuple[np.ndarray, dict]:
    """The whole preprocessing, in order -> float32 (canvas, canvas) and what it found (for --explain)."""
    # 1. Grey working image, (H, W) in [0, 1], longer side work..2*work-1 px (or smaller if the input is).
    g = to_gray(image, int(p["work"]), p["luma"])
    # 2. Polarity: make it dark ink on light paper (when unsure, the second reading if the first finds no digit).
    readings = _polarities(g, _odd(p["polarity_window"] * min(g.shape), 3), p)
    for i, inverted in enumerate(readings):
        try:
            return _read(1.0 - g if inverted else g, inverted, p, unsure=len(readings) > 1)
        except ImageError:
            if i == len(readings) - 1:
                raise


def _read(g: np.ndarray, inverted: bool, p: dict, unsure: bool = False) -> tuple[np.ndarray, dict]:
    """Steps 3-7 on a grey (H, W) image of dark ink on light paper (`unsure`: one of two polarities tried)."""
    fit, canvas = int(p["fit"]), int(p["canvas"])
    h, w = g.shape
    k = _odd(p["paper_window"] * min(h, w), 3)
    # 3. Paper level, locally: a grey closing fills every dark mark narrower than k px with the paper
    #    around it and keeps gradients, shadows and a desk wider than k. Darkness relative to that level.
    #    First, JPEG ringing: along a sheet's edge on a dark desk a JPEG overshoots, a bright line 1-2 px
    #    wide that the closing's max would spread over k px as the paper's level. An opening (min, then max,
    #    over paper_speck px) removes it where a pixel within paper_speck px is under speck_dark x as bright.
    o = int(p["paper_speck"])
    g_paper = np.where(_min2(g, 2 * o + 1) < p["speck_dark"] * g, _max2(_min2(g, o), o), g)  # (H, W)
    paper = _min2(_max2(g_paper, k), k)
    d = np.clip((paper - g) / np.maximum(paper, p["paper_floor"]), 0, 1)  # (H, W): 0 paper, 1 black ink
    d3 = _box3(d)  # (H, W) 3x3 mean darkness: what is ink is decided on it (noise, pencil grain and
    #                hairlines average out; strokes 3 px wide keep their darkness)
    info = {"gray": g, "inverted": inverted, "box": None}
    # 4. The sheet: where the frame shows desk beside the sheet, the closing fills the strips of desk
    #    narrower than k as if they were ink, and the desk's grain just off the sheet's edge reads as ink
    #    against the sheet's level. Such marks touch the frame's edge along their length, or lie at a
    #    step of the paper level: drop them. A desk shows in the frame when the paper level along
    #    desk_frame % of the frame's edge is far below its top (otherwise the step test is off).
    desk_frame = float(np.percentile(_border(paper), p["desk_frame"])) < p["desk_step"] * float(paper.max())
    m = _marks(d3 > p["min_ink"], d3, paper if desk_frame else None, p)
    desk = _paint(m, _desk(m, p), d.shape)
    d[desk], d3[desk] = 0, 0
    peak = float(d3.max())
    if peak < p["min_ink"]:
        raise _with(ImageError("no digit found (blank image)"), info)
    # 5. Ruled and grid lines: when present, ink must be clearly darker than they are.
    lines = _lines(d3, p)
    t = p["ink_rel"] * peak
    if lines.sum() >= p["line_min"] * (h + w):
        level = float(np.percentile(d3[lines], p["line_percentile"]))  # numpy's default: linear between ranks
        if peak < p["line_contrast"] * level:
            raise _with(ImageError("no digit found (blank image; only ruled lines)"), info)
        t = min(max(t, p["line_margin"] * level), p["line_max_rel"] * peak)
    # 6. The digit: the best-scoring mark darker than t (specks and desk edges dropped) and its parts.
    try:
        mask = _digit(d3, t, paper if desk_frame else None, p)
    except ImageError as e:
        raise _with(e, info) from None
    if unsure and inverted and float(paper[mask].mean()) < p["unsure_ground"] * float(np.median(_border(paper))):
        # Light ink lies on the dark ground the frame shows. A "light digit" on a ground far lighter than
        # the frame's (here: a paper level far below it) is a lit part of a sheet broken up by shadow.
        raise _with(ImageError("no digit found (blank image)"), info)
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    info["box"] = (int(y0), int(x0), int(y1), int(x1))
    ink = float(d3[mask].max())  # the digit's own peak: its value 1
    x = np.where(mask, np.clip((d - t) / max(ink - t, 1e-6), 0, 1), 0)[y0:y1, x0:x1].astype(np.float32)
    # 7. MNIST's own steps: longer side to `fit` px, values to peak 1, centre of mass at the canvas centre.
    bh, bw = x.shape
    fh = max(1, int(np.floor(bh * fit / max(bh, bw) + 0.5)))
    fw = max(1, int(np.floor(bw * fit / max(bh, bw) + 0.5)))
    x = _weights(bh, fh) @ x @ _weights(bw, fw).T  # (fh, fw)
    if x.max() <= 0:
        raise ImageError("no digit found (blank image)")
    x /= x.max()
    mass = x.sum()
    cy = (x.sum(axis=1) @ np.arange(fh)) / mass
    cx = (x.sum(axis=0) @ np.arange(fw)) / mass
    top, left = int(np.floor(canvas / 2 - cy + 0.5)), int(np.floor(canvas / 2 - cx + 0.5))  # MNIST's mean is (14, 14)
    out = np.zeros((canvas, canvas), np.float32)
    ty0, tx0 = max(top, 0), max(left, 0)  # clip the paste to the canvas
    ty1, tx1 = min(top + fh, canvas), min(left + fw, canvas)
    out[ty0:ty1, tx0:tx1] = x[ty0 - top:ty1 - top, tx0 - left:tx1 - left]
    return out, info


def preprocess(image, fit: int = 20, canvas: int = 28, params: dict | None = None) -> np.ndarray:
    """Any image of one digit -> float32 (canvas, canvas) in [0, 1], light digit on dark, as in MNIST."""
    return _steps(image, {**PREPROCESSING, **(params or {}), "fit": fit, "canvas": canvas})[0]


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
            p = self.session.run([self.output], {self.input_name: x})[0]  # (n, 10)
            if self.output != "probs":
                p = np.exp(p - p.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
            for row in p:
                k = int(row.argmax())
                out.append(Prediction(k, self.labels[k] if k < len(self.labels) else str(k), float(row[k]), row))
        return out


TILE = 168  # px: each picture of an --explain panel (the 28x28 input enlarged 6x)


def explain_panel(clf: "DigitClassifier", image, note: str = "") -> Image.Image:
    """One --explain picture: the working image with the digit's box (red), the 28x28 the model saw
    (enlarged, nearest neighbour), and the decision below them. Never raises for a bad image: says why."""
    from PIL import ImageDraw

    panel = Image.new("RGB", (2 * TILE + 12, TILE + 26), "white")
    draw = ImageDraw.Draw(panel)
    try:
        x, info = _steps(image, {**clf.params, "fit": clf.fit, "canvas": clf.canvas})
        p = clf.predict_arrays(x[None])[0]
        text = f"-> {p.label}  ({p.confidence:.2f})"
    except ImageError as e:
        x, info, text = None, getattr(e, "info", None), str(e)
    if info is not None:  # the working image (dark ink on light, as the steps saw it), fitted into a tile
        g = info["gray"]
        f = TILE / max(g.shape)
        view = Image.fromarray((g * 255 + 0.5).astype(np.uint8)).convert("RGB")
        view = view.resize((max(1, round(g.shape[1] * f)), max(1, round(g.shape[0] * f))), Image.BILINEAR)
        panel.paste(view, (0, 0))
        if info["box"]:
            y0, x0, y1, x1 = (round(v * f) for v in info["box"])
            draw.rectangle([x0, y0, x1, y1], outline=(220, 0, 0), width=2)
    if x is not None:
        panel.paste(Image.fromarray((x * 255 + 0.5).astype(np.uint8)).resize((TILE, TILE), Image.NEAREST), (TILE + 12, 0))
    draw.text((4, TILE + 6), f"{text}   {note}".strip(), fill=(0, 0, 0))
    return panel


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
    parser.add_argument("--explain", metavar="DIR", type=Path, default=None,
                        help="also write DIR/<file name>.png per input: the working image with the digit's box, "
                             "the 28x28 the model saw, and the decision")
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
    if args.explain:
        try:
            args.explain.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            print(f"error: cannot create --explain folder {args.explain} ({e.strerror or e})", file=sys.stderr)
            return 2
    names = set()
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
        for path in paths[start:start + BATCH] if args.explain else []:
            name = f"{path.name}.png"
            while name in names:  # the same file name from two folders
                name = f"{path.stem}-{len(names)}{path.suffix}.png"
            names.add(name)
            explain_panel(clf, path, path.name).save(args.explain / name)
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
