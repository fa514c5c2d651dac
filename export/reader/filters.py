"""The small numpy building blocks of the preprocessing: window widths, the frame, running max/min,
openings, a 3x3 mean, connected components (their pixels, their boxes) and the resampling matrix. No library filters, so each
ports line by line."""

from __future__ import annotations

import numpy as np


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


def _pixels(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs (as _components gives them) -> the (row, col) of each of their pixels, run by run."""
    length = ends - starts
    return np.repeat(rows, length), np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length) + np.repeat(starts, length)


def _boxes(rows, starts, ends, comp, n: int, shape) -> tuple[np.ndarray, ...]:
    """Each component's box, (y0, x0, y1, x1) of (n,) each, ends exclusive."""
    y0, x0, y1, x1 = np.full(n, shape[0]), np.full(n, shape[1]), np.zeros(n, int), np.zeros(n, int)
    np.minimum.at(y0, comp, rows)
    np.maximum.at(y1, comp, rows + 1)
    np.minimum.at(x0, comp, starts)
    np.maximum.at(x1, comp, ends)
    return y0, x0, y1, x1


def _weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) resampling matrix: a triangle filter (bilinear) widened by the shrink factor, so it
    interpolates when enlarging and averages (antialiased) when shrinking; rows sum to 1. PIL's BILINEAR."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale  # output pixel centres in input pixel units
    wts = np.clip(1 - np.abs(np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support, 0, None)
    return (wts / wts.sum(axis=1, keepdims=True)).astype(np.float32)


def _resample(a: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """(h, w) float32 -> (oh, ow) float32, resampled by _weights along each axis (mnist.py's and lines.py's)."""
    return _weights(a.shape[0], oh) @ a @ _weights(a.shape[1], ow).T
