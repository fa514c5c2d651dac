"""A whole number (step 6 for many digits): the plausible marks grouped into digits, in reading order.

The ink is found as for one digit (preprocess._ink: steps 3-5, the same threshold t); then:
  - lines: marks whose vertical extents overlap lie on one line; lines top to bottom;
  - digits: on a line, marks that overlap along it (a 5's bar, a broken 4 or 8) make one digit, left to
    right; a small mark that is no digit by itself (a 5's bar in a small number) joins the digit it lies in;
  - no digits: specks and dots (small beside the number's digits), underlines and dashes (flat and long);
  - touching digits: a digit much wider than the number's digits are tall is cut in two at the column of
    little ink where the classifier is most sure of both halves (the product of their confidences);
  - turned 90 degrees: when the marks stand in one column (a number written along the long side of a
    sheet, photographed turned), the image is turned both ways and the way whose digits the classifier
    reads with the higher mean log-confidence wins: the whole number decides, never one digit.
Each digit then goes through MNIST's own steps (step 7) into its own canvas x canvas input. Every number
of it is in PREPROCESSING (params.py).
"""

from __future__ import annotations

import numpy as np

from .marks import _paint, _plausible
from .preprocess import _input, _ink, _one, _polar


def _lines(idx, m: dict, p: dict) -> list[list[int]]:
    """Mark indices -> one list of them per line: a mark joins the line its vertical extent overlaps most,
    by more than line_overlap x the shorter of the two (else it starts a line); marks taken top down."""
    lines = []  # [y0, y1, members]
    for i in sorted(idx, key=lambda i: (m["y0"][i], m["x0"][i], i)):
        y0, y1 = int(m["y0"][i]), int(m["y1"][i])
        best, most = None, 0.0
        for line in lines:
            ov = (min(y1, line[1]) - max(y0, line[0])) / min(y1 - y0, line[1] - line[0])
            if ov > p["line_overlap"] and ov > most:
                best, most = line, ov
        if best is None:
            lines.append([y0, y1, [i]])
        else:
            best[0], best[1] = min(best[0], y0), max(best[1], y1)
            best[2].append(i)
    return [line[2] for line in lines]


def _columns(members, m: dict, p: dict) -> list[list[int]]:
    """The marks of one line -> the digits, lists of mark indices, left to right: a mark joins the digit
    before it when their horizontal extents overlap by more than join_overlap x the narrower one."""
    groups = []  # [x0, x1, members]
    for i in sorted(members, key=lambda i: (m["x0"][i], m["y0"][i], i)):
        x0, x1 = int(m["x0"][i]), int(m["x1"][i])
        g = groups[-1] if groups else None
        if g and min(x1, g[1]) - max(x0, g[0]) > p["join_overlap"] * min(x1 - x0, g[1] - g[0]):
            g[0], g[1] = min(g[0], x0), max(g[1], x1)
            g[2].append(i)
        else:
            groups.append([x0, x1, [i]])
    return [g[2] for g in groups]


def _box(members, m: dict) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) around the marks, ends exclusive."""
    return (int(min(m["y0"][i] for i in members)), int(min(m["x0"][i] for i in members)),
            int(max(m["y1"][i] for i in members)), int(max(m["x1"][i] for i in members)))


def _vertical(m: dict, ok: np.ndarray, p: dict) -> bool:
    """Do the marks stand in one column (a number turned 90 degrees)? The marks of a digit's size (their
    longer side at least half the median's) make at least 3 lines, and at most half as many lines when
    their horizontal extents are taken as the vertical ones (the layout turned)."""
    idx = np.nonzero(ok)[0]
    if len(idx) < 3:
        return False
    idx = [int(i) for i in idx if m["side"][i] >= 0.5 * np.median(m["side"][idx])]
    turned = {"y0": m["x0"], "y1": m["x1"], "x0": m["y0"], "x1": m["y1"]}
    rows, cols = len(_lines(idx, m, p)), len(_lines(idx, turned, p))
    return rows >= 3 and 2 * cols <= rows


def _groups(m: dict, ok: np.ndarray, inside: np.ndarray, p: dict) -> tuple[list[list[list[int]]], float]:
    """The digits as mark indices, per line (top down), per digit (left to right), and the digits' typical
    height in px (the median of their boxes')."""
    lines = [_columns(line, m, p) for line in _lines(np.nonzero(ok)[0], m, p)]
    boxes = [[_box(g, m) for g in line] for line in lines]
    heights = [b[2] - b[0] for line in boxes for b in line]
    tall = float(np.median(heights))  # px: the number's digits' height
    out = []
    for line, bs in zip(lines, boxes):
        keep = []
        for g, (y0, x0, y1, x1) in zip(line, bs):
            h, w = y1 - y0, x1 - x0
            if max(h, w) < p["speck_rel"] * tall:
                continue  # a speck or a dot, small beside the digits
            if h < p["flat_rel"] * tall and w > p["flat_long"] * h:
                continue  # an underline or a dash: flat and long
            keep.append(g)
        if keep:
            out.append(keep)
    # Small marks that are no digit by themselves (too small for one, as a 5's bar in a small number):
    # each joins the digit whose columns hold its centre and whose rows, grown by half the digits'
    # height, do too (the nearest such, by rows), when it holds merge_min of that digit's ink.
    least = max(p["mark_ink"], p["mark_peak"] * float(m["peak"][ok].max()))
    loose = inside & ~ok & (m["peak"] >= least) & (m["peak"] - m["ground"] >= p["mark_contrast"])
    flat = [(li, gi, _box(g, m)) for li, line in enumerate(out) for gi, g in enumerate(line)]
    for i in np.nonzero(loose)[0]:
        cy, cx, best, near = m["cy"][i], m["cx"][i], None, np.inf
        for li, gi, (y0, x0, y1, x1) in flat:
            if x0 <= cx < x1 and y0 - tall / 2 <= cy < y1 + tall / 2:
                dist = abs(cy - (y0 + y1 - 1) / 2)
                if dist < near:
                    best, near = (li, gi), dist
        if best is not None:
            g = out[best[0]][best[1]]
            if m["mass"][i] >= p["merge_min"] * sum(m["mass"][j] for j in g):
                g.append(int(i))
    return out, tall


def _cuts(mask: np.ndarray, box, p: dict) -> list[int]:
    """Candidate columns to cut a wide mark at: the local minima of its ink per column within the middle
    (split_margin of its width kept on each side), the `split_tries` lowest (nearest the middle first)."""
    y0, x0, y1, x1 = box
    w = x1 - x0
    col = mask[y0:y1, x0:x1].sum(axis=0)  # (w,) ink pixels per column
    lo, hi = max(1, int(np.ceil(p["split_margin"] * w))), min(w - 1, int(np.floor((1 - p["split_margin"]) * w)))
    cand = [c for c in range(lo, hi + 1) if col[c] <= col[c - 1] and (c + 1 >= w or col[c] <= col[c + 1])]
    cand.sort(key=lambda c: (int(col[c]), abs(2 * c - w), c))
    out = []
    for c in cand:
        if all(abs(c - o) > 2 for o in out):  # neighbours of a flat minimum cut alike
            out.append(c)
        if len(out) == int(p["split_tries"]):
            break
    return [x0 + c for c in out]


def _split(ink: dict, mask: np.ndarray, box, tall: float, p: dict, classify) -> list[np.ndarray]:
    """A digit's (H, W) bool mask -> the masks of its digits, left to right: cut in two where the product
    of the halves' confidences is highest, while wider than split_wide x the digits' height."""
    y0, x0, y1, x1 = box
    if x1 - x0 <= p["split_wide"] * tall:
        return [mask]
    cols = np.arange(mask.shape[1])
    pairs = []
    for c in _cuts(mask, box, p):
        left, right = mask & (cols < c), mask & (cols >= c)
        if left.any() and right.any():
            pairs.append((left, right))
    if not pairs:
        return [mask]
    x = np.stack([_input(ink, half, p)[0] for pair in pairs for half in pair])  # (2 x pairs, canvas, canvas)
    conf = classify(x).max(axis=1).reshape(-1, 2)
    left, right = pairs[int(np.argmax(conf[:, 0] * conf[:, 1]))]
    out = []
    for half in (left, right):
        ys, xs = np.nonzero(half.any(axis=1))[0], np.nonzero(half.any(axis=0))[0]
        out += _split(ink, half, (ys[0], xs[0], ys[-1] + 1, xs[-1] + 1), tall, p, classify)
    return out


def _turn(ink: dict, k: int) -> dict:
    """The ink turned by k x 90 degrees counterclockwise (np.rot90)."""
    rot = {"t": ink["t"], "info": ink["info"]}
    for key in ("d", "d3", "paper", "desk"):
        rot[key] = None if ink[key] is None else np.rot90(ink[key], k)
    return rot


def _unturn(box, k: int, shape) -> tuple[int, int, int, int]:
    """A box (y0, x0, y1, x1) in the ink turned by k (1 or -1) -> in the ink's own (H, W) pixels."""
    y0, x0, y1, x1 = box
    h, w = shape
    if k == 1:  # np.rot90(a)[i, j] = a[j, w - 1 - i]
        return (x0, w - y1, x1, w - y0)
    if k == -1:  # np.rot90(a, -1)[i, j] = a[h - 1 - j, i]
        return (h - x1, y0, h - x0, y1)
    return box


def _digits(ink: dict, p: dict, classify, marks=None) -> list[list[dict]]:
    """The digits of a number, per line: {"input": (canvas, canvas), "box": (y0, x0, y1, x1) working px,
    "probs": (classes,)}."""
    m, ok, inside = marks or _plausible(ink["d3"], ink["t"], ink["desk"], p)
    groups, tall = _groups(m, ok, inside, p)
    lines = []
    for line in groups:
        masks = []
        for g in line:
            keep = np.zeros(m["n"], bool)
            keep[g] = True
            masks += _split(ink, _paint(m, keep, ink["d"].shape), _box(g, m), tall, p, classify)
        lines.append([_input(ink, mask, p) for mask in masks])
    flat = [x for line in lines for x, _ in line]
    probs = classify(np.stack(flat)) if flat else np.zeros((0, 10), np.float32)
    out, n = [], 0
    for line in lines:
        out.append([{"input": x, "box": box, "probs": probs[n + i]} for i, (x, box) in enumerate(line)])
        n += len(line)
    return out


def _evidence(lines) -> float:
    """Mean log-confidence over all digits of a number (the evidence for one way of turning it)."""
    conf = [float(dg["probs"].max()) for line in lines for dg in line]
    return float(np.mean(np.log(np.maximum(conf, 1e-30)))) if conf else -np.inf


def _number(g: np.ndarray, inverted: bool, p: dict, unsure: bool, frame, classify):
    """Steps 3-7 for a number on a grey (H, W) image of dark ink on light paper -> (the single digit's
    input, box and info as _read gives them, the digits per line with boxes in working pixels)."""
    ink = _ink(g, inverted, p, frame)
    marks = _plausible(ink["d3"], ink["t"], ink["desk"], p)
    x, box = _input(ink, _one(ink, p, unsure, marks), p)  # the single digit, exactly as preprocess reads it
    ink["info"]["box"] = box
    lines = _digits(ink, p, classify, marks)
    if _vertical(*marks[:2], p):  # a column of marks: the number turned 90 degrees, read both ways
        ways = []
        for k in (1, -1):
            turned = _digits(_turn(ink, k), p, classify)
            for line in turned:
                for dg in line:
                    dg["box"] = _unturn(dg["box"], k, g.shape)
            ways.append(turned)
        lines = max(ways, key=_evidence)  # the first of equals
    return x, ink["info"], lines


def read_number(image, p: dict, classify):
    """Any image -> (the single digit's input (canvas, canvas), the info of --explain, the digits per line
    as _digits gives them, boxes in working pixels). classify: (N, canvas, canvas) float32 -> (N, classes)
    probabilities. ImageError exactly when the single digit's reading raises it."""
    return _polar(image, p, lambda g, inverted, p, unsure, frame: _number(g, inverted, p, unsure, frame, classify))
