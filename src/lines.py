"""Handwritten lines of MNIST digits: the writer shared by the line reader's training data (src/line_data.py)
and the number benchmark (tests/numbers.py).

A line is MNIST digits written side by side as a hand writes them: each digit 80-120% of the writer's size,
all slanted alike (a shear of up to +-0.3, each digit +-0.05 from it), sitting on a baseline that drifts (up
to +-5% of the run, +-1 px per digit); gaps between neighbours from 1 px to half a digit wide (1-7.5 px at
MNIST's scale, a digit 20 px tall), or touching: a share of the pairs overlap by 1-2 px of ink.
"""

from __future__ import annotations

import numpy as np

SLANT, SIZE, DRIFT = 0.3, (0.8, 1.2), 0.05  # shear (x px per px up), size range, baseline slope
GAP, TOUCH = (1.0, 7.5), 0.13  # px between neighbours' ink at MNIST's scale; share of touching pairs


def bilinear(img: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """img (H, W) sampled at float pixel coordinates (centres at integers); 0 outside."""
    hh, ww = img.shape
    p = np.pad(img, 1)
    py, px = np.clip(py + 1, 0, hh + 0.999), np.clip(px + 1, 0, ww + 0.999)
    y0, x0 = py.astype(int), px.astype(int)
    fy, fx = py - y0, px - x0
    y1, x1 = np.minimum(y0 + 1, hh + 1), np.minimum(x0 + 1, ww + 1)
    return ((p[y0, x0] * (1 - fx) + p[y0, x1] * fx) * (1 - fy) + (p[y1, x0] * (1 - fx) + p[y1, x1] * fx) * fy)


def written(digit: np.ndarray, size: float, slant: float) -> np.ndarray:
    """A (28, 28) uint8 MNIST digit -> its ink (h, w) float32 in [0, 1], cropped to the ink, `size` times as
    large and sheared: each row shifted `slant` px right per px above the bottom row."""
    a = digit.astype(np.float32) / 255
    ys, xs = np.nonzero(a)
    a = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = a.shape
    oh, ow = int(np.ceil(h * size)) + 1, int(np.ceil((w + abs(slant) * h) * size)) + 1
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32) + 0.5  # output pixel centres
    y = yy / size - 0.5
    x = xx / size - 0.5 - slant * (h - 1 - y) - max(0.0, -slant * (h - 1))
    out = bilinear(a, y, x)
    ys, xs = np.nonzero(out > 0.02)
    return out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def write_line(pieces: list[np.ndarray], slant: float, rng, touch: float = TOUCH) -> tuple[np.ndarray, list, int]:
    """Written digits -> one line (H, W) float32 ink, each digit's box (x0, y0, x1, y1) in it, and how many
    neighbours' inks (> 0.5) meet. Each digit sits on the drifting baseline, its gap to the ink so far
    measured row by row (each row against the rows next to it too, so no corner touches unasked); it leans
    over the previous digit's box by at most 2 px + the slant's lean over half its height (so no digit tucks
    into a neighbour's open side: a 7 into a 6). `touch`: the share of pairs written touching."""
    height = 40 + max(p.shape[0] for p in pieces) * 2
    canvas = np.zeros((height, sum(p.shape[1] for p in pieces) + 10 * len(pieces) + 10), np.float32)
    right = np.full(height + 2, -np.inf)  # per row (1 px padded): the rightmost ink column so far
    slope, boxes, x, touching = rng.uniform(-DRIFT, DRIFT), [], 0, 0
    for p in pieces:
        ph, pw = p.shape
        base = height * 0.7 + slope * x + rng.normal(0, 1)
        y0 = int(np.clip(round(base - ph), 0, height - ph))
        ink = p > 0.5
        has = ink.any(1)
        left = np.where(has, ink.argmax(1), 0)  # per row of the digit: its leftmost ink column
        gap = -int(rng.integers(1, 3)) if rng.random() < touch and boxes else int(round(rng.uniform(*GAP)))
        near = np.max([right[y0 + d:y0 + d + ph] for d in range(3)], 0)  # rows y-1, y, y+1 of the ink so far
        rows = np.nonzero(has & np.isfinite(near))[0]
        if boxes:  # beside the last digit's box, leaning over it a little at most
            x = max(0, boxes[-1][2] - int(2 + abs(slant) * ph / 2) + min(gap, 0))
            if len(rows):
                x = max(x, int(np.max(near[rows] + 1 + gap - left[rows])))
        win = canvas[y0:y0 + ph, x:x + pw]
        old = np.pad(win > 0.5, 1)
        touching += bool((ink & np.max([old[dy:dy + ph, dx:dx + pw] for dy in range(3) for dx in range(3)], 0)).any())
        np.maximum(win, p, out=win)
        last = np.where(has, pw - 1 - ink[:, ::-1].argmax(1), -1)
        rows_now = right[1 + y0:1 + y0 + ph]  # a view
        rows_now[has] = np.maximum(rows_now[has], x + last[has])
        boxes.append((x, y0, x + pw, y0 + ph))
    return canvas, boxes, touching


def writer(rng) -> tuple[float, float]:
    """One writer's (size, slant): the size of their digits (a factor of MNIST's) and their shear."""
    return rng.uniform(*SIZE), rng.uniform(-SLANT, SLANT)


def line_of(images: np.ndarray, labels: np.ndarray, idx, size: float, slant: float, rng,
            touch: float = TOUCH) -> tuple[np.ndarray, list, int, str, list]:
    """The MNIST digits images[idx] written as one line by the writer (size, slant) -> write_line()'s (ink,
    boxes, touching), the line's text and each digit's own ink (h, w) float32 (its box's size: a number's
    photo draws a fine pen's centre line digit by digit, tests/photos.py)."""
    pieces = [written(images[i], np.clip(size * rng.uniform(0.9, 1.1), *SIZE), slant + rng.uniform(-0.05, 0.05))
              for i in idx]
    canvas, boxes, touching = write_line(pieces, slant, rng, touch)
    return canvas, boxes, touching, "".join(str(int(labels[i])) for i in idx), pieces
