"""Pen strokes for tests/photos.py, in numpy alone: an MNIST digit's centre line (Zhang-Suen thinning), the
line as a graph of short segments, smoothed, drawn at a fixed width in px; and bold marker strokes.

    skel = thin(big > 0.45)                      # 1-px skeleton of a thresholded, enlarged digit
    nodes, edges = skeleton_graph(skel)          # (x, y) per skeleton pixel, 8-neighbour pairs
    nodes = smooth(nodes, edges)                 # the pixel staircase rounded off, endpoints kept
    alpha = draw_segments((h, w), a, b, width=2.5, soft=1.0)   # antialiased coverage in [0, 1]
"""

from __future__ import annotations

import numpy as np

_NEIGHBOURS = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]  # P2..P9, clockwise from north


def thin(mask: np.ndarray, max_iter: int = 200) -> np.ndarray:
    """Zhang-Suen thinning of a boolean (H, W) mask to a skeleton about 1 px wide (vectorised: each sub-step
    removes every deletable pixel at once)."""
    b = np.pad(mask.astype(bool), 1)
    h, w = mask.shape
    for _ in range(max_iter):
        changed = False
        for step in (0, 1):
            p = [b[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in _NEIGHBOURS]  # P2..P9
            count = np.sum(p, axis=0)
            transitions = np.sum([~p[i] & p[(i + 1) % 8] for i in range(8)], axis=0)
            if step == 0:
                side = ~(p[0] & p[2] & p[4]) & ~(p[2] & p[4] & p[6])
            else:
                side = ~(p[0] & p[2] & p[6]) & ~(p[0] & p[4] & p[6])
            core = b[1:-1, 1:-1]
            drop = core & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if drop.any():
                core[drop] = False  # a view into b
                changed = True
        if not changed:
            break
    return b[1:-1, 1:-1].copy()


def skeleton_graph(skel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skeleton pixels -> nodes (n, 2) float (x, y) and edges (m, 2) int: 4-neighbour pairs, and diagonal
    pairs not already joined through a shared 4-neighbour (no tiny triangles at the staircase's corners)."""
    h, w = skel.shape
    index = np.full((h + 2, w + 2), -1, np.int64)
    ys, xs = np.nonzero(skel)
    index[ys + 1, xs + 1] = np.arange(len(ys))
    edges = []
    for dy, dx in [(0, 1), (1, 0), (1, 1), (1, -1)]:
        other = index[ys + 1 + dy, xs + 1 + dx]
        ok = other >= 0
        if dy and dx:  # diagonal: skip when the two pixels already meet through (y, x+dx) or (y+dy, x)
            ok &= (index[ys + 1, xs + 1 + dx] < 0) & (index[ys + 1 + dy, xs + 1] < 0)
        edges.append(np.stack([np.flatnonzero(ok), other[ok]], 1))
    return np.stack([xs, ys], 1).astype(np.float64), np.concatenate(edges).reshape(-1, 2)


def smooth(nodes: np.ndarray, edges: np.ndarray, rounds: int = 4, rate: float = 0.5) -> np.ndarray:
    """Laplacian smoothing of the nodes of degree 2 (endpoints and junctions stay where they are)."""
    n = len(nodes)
    degree = np.bincount(edges.ravel(), minlength=n)
    move = (degree == 2)[:, None]
    p = nodes.copy()
    for _ in range(rounds):
        total = np.zeros_like(p)
        np.add.at(total, edges[:, 0], p[edges[:, 1]])
        np.add.at(total, edges[:, 1], p[edges[:, 0]])
        mean = total / np.maximum(degree, 1)[:, None]
        p = np.where(move, p + rate * (mean - p), p)
    return p


def split(a: np.ndarray, b: np.ndarray, longest: float) -> tuple[np.ndarray, np.ndarray]:
    """Segments a[i]-b[i] ((n, 2) each) cut into pieces at most `longest` long."""
    pieces = np.maximum(1, np.ceil(np.hypot(*(b - a).T) / longest)).astype(int)
    seg = np.repeat(np.arange(len(a)), pieces)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    t0, t1 = (k / pieces[seg])[:, None], ((k + 1) / pieces[seg])[:, None]
    d = b[seg] - a[seg]
    return a[seg] + t0 * d, a[seg] + t1 * d


def draw_segments(shape: tuple[int, int], a: np.ndarray, b: np.ndarray, width: float, soft: float = 1.0) -> np.ndarray:
    """(H, W) float32 coverage of segments a[i]-b[i] ((n, 2) float (x, y) px; pixel (r, c) covers
    [c, c+1) x [r, r+1)) stroked `width` px wide: clip((width/2 - distance) / soft + 0.5, 0, 1), the
    maximum over segments. Work is proportional to the segments' length, not to the window."""
    h, w = shape
    out = np.zeros(h * w, np.float32)
    if len(a) == 0:
        return out.reshape(h, w)
    a, b = split(np.asarray(a, np.float32), np.asarray(b, np.float32), 6.0)
    r = width / 2 + soft / 2 + 1
    lo = np.floor(np.minimum(a, b) - r).astype(np.int64)
    size = int(np.ceil(np.max(np.maximum(a, b) + r - lo))) + 1
    off = np.arange(size)
    px = lo[:, 0, None, None] + off[None, None, :]  # (n, 1, size)
    py = lo[:, 1, None, None] + off[None, :, None]  # (n, size, 1)
    d = (b - a)[:, :, None, None]
    cx, cy = px + 0.5 - a[:, 0, None, None], py + 0.5 - a[:, 1, None, None]
    t = np.clip((cx * d[:, 0] + cy * d[:, 1]) / np.maximum(d[:, 0] ** 2 + d[:, 1] ** 2, 1e-9), 0, 1)
    dist = np.hypot(cx - t * d[:, 0], cy - t * d[:, 1])
    cover = np.clip((width / 2 - dist) / soft + 0.5, 0, 1).astype(np.float32)
    keep = (cover > 0) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
    flat = np.broadcast_to(py * w + px, keep.shape)[keep]
    np.maximum.at(out, flat, cover[keep])
    return out.reshape(h, w)


def pixels(shape: tuple[int, int], a: np.ndarray, b: np.ndarray, width: float, soft: float = 1.0):
    """draw_segments within an (H, W) frame, working only in the segments' window -> (ys, xs, coverage) of
    the pixels they cover."""
    ends = np.concatenate([a, b])
    r = width / 2 + soft + 2
    x0, y0 = np.maximum(0, np.floor(ends.min(0) - r).astype(int))
    x1, y1 = np.minimum([shape[1], shape[0]], np.ceil(ends.max(0) + r).astype(int))
    if x1 <= x0 or y1 <= y0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    cover = draw_segments((y1 - y0, x1 - x0), a - [x0, y0], b - [x0, y0], width, soft)
    ys, xs = np.nonzero(cover > 0.004)
    return ys + y0, xs + x0, cover[ys, xs]


def dilate(a: np.ndarray, radius: float) -> np.ndarray:
    """Grey dilation of (H, W) by a disc of `radius` px (the maximum over the disc's whole-pixel offsets)."""
    r = int(np.ceil(radius))
    out = a.copy()
    p = np.pad(a, r)
    h, w = a.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= radius * radius:
                np.maximum(out, p[r + dy:r + dy + h, r + dx:r + dx + w], out=out)
    return out
