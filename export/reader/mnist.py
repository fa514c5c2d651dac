"""MNIST's own steps (step 7): strokes near MNIST's width, the cropped digit's longer side to `fit` px,
centre of mass at the canvas centre."""

from __future__ import annotations

import numpy as np

from .filters import _max2, _min2, _resample
from .image import ImageError


def _mnist(x: np.ndarray, fit: int, canvas: int) -> np.ndarray:
    """The digit cropped to its box, (h, w) float32 light on dark -> (canvas, canvas) float32 in [0, 1]:
    longer side to `fit` px, values to peak 1, centre of mass at the canvas centre."""
    bh, bw = x.shape
    fh = max(1, int(np.floor(bh * fit / max(bh, bw) + 0.5)))
    fw = max(1, int(np.floor(bw * fit / max(bh, bw) + 0.5)))
    x = _resample(x, fh, fw)  # (fh, fw)
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
    return out


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in px of a (H, W) bool mask: 2 x area / perimeter (a stroke w wide and L long has
    area wL and perimeter 2L), the perimeter counted along rows and columns and scaled by pi/4, the mean
    of |cos| + |sin| over all directions."""
    m = np.pad(mask, 1).astype(np.int8)
    edges = np.abs(np.diff(m, axis=0)).sum() + np.abs(np.diff(m, axis=1)).sum()
    return float(2 * mask.sum() / max(edges * np.pi / 4, 1))


def _stroke(x: np.ndarray, mask: np.ndarray, box, fit: int, p: dict) -> np.ndarray:
    """The digit (H, W) float32 and its mask, cropped to its box (y0, x0, y1, x1) -> (h, w) float32, its
    strokes first brought towards MNIST's width at the scale that brings the box's longer side to `fit` px.
    MNIST's strokes are about 2.3 px wide on its 20 px digits; a ballpoint stroke 3 px wide on a digit 250
    px tall would shrink to 0.24 px, a faint hairline the model never saw: thinner strokes are thickened (a
    running max over a square) to `stroke` px. A marker's strokes, wider than stroke_max x that, are thinned
    (a running min) by `thin` of their excess, where the digit is at least 2 x fit px (smaller ones have
    no pixels to spare). The box grows by the px added, within the image."""
    h, w = x.shape
    y0, x0, y1, x1 = box
    side = max(y1 - y0, x1 - x0)
    width = _stroke_width(mask[y0:y1, x0:x1])  # px
    grow = int(np.floor(p["stroke"] * side / fit - width + 0.5))  # px to add
    if width > p["stroke_max"] * p["stroke"] * side / fit and side >= 2 * fit:
        x = _min2(x, int(p["thin"] * -grow) + 1)
    if grow > 0:
        x = _max2(x, grow + 1)
        y0, x0 = max(y0 - grow // 2, 0), max(x0 - grow // 2, 0)
        y1, x1 = min(y1 + grow - grow // 2, h), min(x1 + grow - grow // 2, w)
    return x[y0:y1, x0:x1]
