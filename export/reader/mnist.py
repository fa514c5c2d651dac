"""MNIST's own steps (step 7): the cropped digit's longer side to `fit` px, centre of mass at the canvas centre."""

from __future__ import annotations

import numpy as np

from .filters import _weights
from .image import ImageError


def _mnist(x: np.ndarray, fit: int, canvas: int) -> np.ndarray:
    """The digit cropped to its box, (h, w) float32 light on dark -> (canvas, canvas) float32 in [0, 1]:
    longer side to `fit` px, values to peak 1, centre of mass at the canvas centre."""
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
    return out
