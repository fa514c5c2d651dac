"""The camera's side of tests/photos.py, in numpy alone: the sheet's perspective (a homography), smooth
random fields (light, shadow), ruled lines' coverage, bilinear resampling and sensor noise."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from PIL import Image


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with dst ~ H @ src for four (x, y) point pairs."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        b += [u, v]
    return np.append(np.linalg.solve(np.array(a, float), np.array(b, float)), 1).reshape(3, 3)


def _apply(hm: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(n, 2) points (x, y) through the homography hm."""
    q = np.asarray(p, float) @ hm[:, :2].T + hm[:, 2]
    return q[:, :2] / q[:, 2:]


def _smooth_noise(rng, h: int, w: int, cells: int) -> np.ndarray:
    """(h, w) float32 smooth random field in about [-1, 1]: a coarse random grid, bilinearly enlarged."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.BILINEAR))


def _line_cover(t: np.ndarray, spacing: float, offset: float, width: float) -> np.ndarray:
    """Coverage in [0, 1] of lines `width` px wide every `spacing` px along coordinate t (antialiased)."""
    dist = np.abs((t - offset) % spacing - spacing / 2)  # distance from the nearest line, which sits mid-period
    dist = spacing / 2 - dist
    return np.clip(width / 2 + 0.5 - dist, 0, 1)


_GAUSS = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)  # a byte -> N(0, 1)


def _add_noise(out: np.ndarray, rng, high: bool) -> None:
    """Sensor noise on uint8 RGB, in place: low, the same in every channel (sigma 0.004-0.02), or high and
    per channel (sigma 0.025-0.06, each channel 0.8-1.25 of it). Random bytes through a Gaussian table: a
    12 MP photo in ~0.15 s."""
    if high:
        luts = (rng.uniform(0.025, 0.06) * rng.uniform(0.8, 1.25, 3) * 255)[:, None] * _GAUSS
    else:
        luts = rng.uniform(0.004, 0.02) * 255 * _GAUSS[None]
    luts = np.round(luts).astype(np.int16)
    h, w, _ = out.shape
    rows = max(1, 2**21 // w)
    for r0 in range(0, h, rows):
        block = out[r0:r0 + rows].astype(np.int16)
        raw = np.frombuffer(rng.bytes(block.shape[0] * w * len(luts)), np.uint8).reshape(block.shape[0], w, len(luts))
        for c in range(3):
            block[..., c] += luts[c % len(luts)][raw[..., c % len(luts)]]
        out[r0:r0 + rows] = np.clip(block, 0, 255)
