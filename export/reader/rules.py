"""Ruled and grid paper (step 5): the rules' pixels, and the darkness ink must exceed beside them."""

from __future__ import annotations

import numpy as np

from .filters import _odd, _open1, _run
from .image import ImageError


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


def _threshold(d: np.ndarray, peak: float, p: dict) -> float:
    """The darkness ink must exceed on a (H, W) darkness with this peak: ink_rel x peak; on ruled or grid
    paper, clearly darker than the rules too. ImageError when the page holds only rules."""
    h, w = d.shape
    lines = _lines(d, p)
    t = p["ink_rel"] * peak
    if lines.sum() >= p["line_min"] * (h + w):
        level = float(np.percentile(d[lines], p["line_percentile"]))  # numpy's default: linear between ranks
        if peak < p["line_contrast"] * level:
            raise ImageError("no digit found (blank image; only ruled lines)")
        t = min(max(t, p["line_margin"] * level), p["line_max_rel"] * peak)
    return t
