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

from .image import ImageError
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


def _columns(members, m: dict, tall: float, p: dict) -> list[list[int]]:
    """The marks of one line -> the digits, lists of mark indices, left to right. Whole marks (at least
    part_rel x the digits' height tall) are digits of their own, even where they overlap along the line
    (slanted writing). A part (shorter: a 5's bar, a 7's, half a broken 8) joins the digit its horizontal
    extent overlaps most, or else the nearest within part_gap x tall; alone, it is a digit of its own."""
    whole = [i for i in members if m["y1"][i] - m["y0"][i] >= p["part_rel"] * tall]
    groups = [[i] for i in sorted(whole, key=lambda i: (m["x0"][i] + m["x1"][i], m["y0"][i], i))]
    parts = sorted((i for i in members if m["y1"][i] - m["y0"][i] < p["part_rel"] * tall),
                   key=lambda i: (m["x0"][i], m["y0"][i], i))
    lone = []  # parts near no whole mark: among themselves, those overlapping along the line make one digit
    for i in parts:
        x0, x1 = int(m["x0"][i]), int(m["x1"][i])
        best, most = None, -p["part_gap"] * tall  # overlap in px (negative: the gap between them)
        for g in groups:
            ov = min(x1, int(m["x1"][g[0]])) - max(x0, int(m["x0"][g[0]]))
            if ov > most:
                best, most = g, ov
        if best is None:
            if lone and min(x1, max(m["x1"][j] for j in lone[-1])) - max(x0, min(m["x0"][j] for j in lone[-1])) > 0:
                lone[-1].append(int(i))
            else:
                lone.append([int(i)])
        elif m["mass"][i] >= p["merge_min"] * m["mass"][best[0]]:  # a speck of dust beside a digit is no part
            best.append(int(i))
    groups += lone
    groups.sort(key=lambda g: (min(m["x0"][j] for j in g) + max(m["x1"][j] for j in g), g[0]))
    return groups


def _box(members, m: dict) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) around the marks, ends exclusive."""
    return (int(min(m["y0"][i] for i in members)), int(min(m["x0"][i] for i in members)),
            int(max(m["y1"][i] for i in members)), int(max(m["x1"][i] for i in members)))


def _vertical(m: dict, ok: np.ndarray, p: dict) -> bool:
    """Do the marks stand in a column (a number turned 90 degrees)? At least 3 plausible marks of a digit's
    size (their longer side at least half the median's) whose box together is more than turn_tall x as
    tall as wide (one upright line, or two, is far wider than tall; one digit has fewer marks)."""
    idx = np.nonzero(ok)[0]
    idx = idx[m["side"][idx] >= 0.5 * np.median(m["side"][idx])]
    if len(idx) < 3:
        return False
    h = int(m["y1"][idx].max() - m["y0"][idx].min())
    w = int(m["x1"][idx].max() - m["x0"][idx].min())
    return h > p["turn_tall"] * w


def _groups(m: dict, ok: np.ndarray, inside: np.ndarray, p: dict) -> tuple[list[list[list[int]]], float]:
    """The digits as mark indices, per line (top down), per digit (left to right), and the digits'
    typical height in px (the median of the plausible marks')."""
    idx = np.nonzero(ok)[0]
    tall = float(np.median(m["y1"][idx] - m["y0"][idx]))  # px: the number's digits' height, the marks' median
    # Marks too small to be a digit by themselves (a 5's bar in a small number) may still be parts of one:
    # as dark and as clear of their ground as a digit's marks.
    least = max(p["mark_ink"], p["mark_peak"] * float(m["peak"][ok].max()))
    loose = inside & ~ok & (m["peak"] >= least) & (m["peak"] - m["ground"] >= p["mark_contrast"])
    lines = [_columns(line, m, tall, p) for line in _lines(np.nonzero(ok | loose)[0], m, p)]
    out = []
    for line in lines:
        keep = []
        for g in line:
            y0, x0, y1, x1 = _box(g, m)
            h, w = y1 - y0, x1 - x0
            if max(h, w) < p["speck_rel"] * tall or not ok[g].any():
                continue  # a speck or a dot, small beside the digits, or parts of none
            if h < p["flat_rel"] * tall and w > p["flat_long"] * h:
                continue  # an underline or a dash: flat and long
            keep.append(g)
        if keep:
            out.append(keep)
    return out, tall


def _cuts(mask: np.ndarray, box, p: dict) -> list[tuple[float, float]]:
    """Candidate cuts of a wide mark, (x at the box's middle row, slant): along each slant of split_slants
    (px right per px up, as handwriting leans), the local minima of its ink per slanted column within the
    middle (split_margin of its width kept on each side), lowest first (then nearest the middle),
    split_apart px apart."""
    y0, x0, y1, x1 = box
    w, mid = x1 - x0, (y0 + y1 - 1) / 2
    ys, xs = np.nonzero(mask[y0:y1, x0:x1])
    lo, hi = max(1, int(np.ceil(p["split_margin"] * w))), min(w - 1, int(np.floor((1 - p["split_margin"]) * w)))
    cand = []
    for slant in p["split_slants"]:
        shift = slant * (mid - (ys + y0))  # px each ink pixel's column is moved to undo the slant
        u = np.floor(xs - shift + 0.5).astype(int)  # the column along the slant through each ink pixel
        col = np.bincount(u - u.min(), minlength=u.max() - u.min() + 1)  # ink per slanted column, from u.min()
        for c in range(max(lo, int(u.min()) + 1), min(hi, int(u.max()) - 1) + 1):
            k = c - int(u.min())
            if col[k] <= col[k - 1] and col[k] <= col[k + 1]:
                cand.append((int(col[k]), abs(2 * c - w), x0 + c, slant))
    cand.sort()
    out = []
    for _, _, c, slant in cand:
        if all(abs(c - o) > p["split_apart"] for o, _ in out):  # near cuts cut alike: try others
            out.append((c, slant))
    return out


def _piece(ink: dict, mask: np.ndarray, p: dict):
    """_input of a piece, or None when no pixel of it is darker than t (its 3x3 mean was): no digit."""
    try:
        return _input(ink, mask, p)
    except ImageError:
        return None


def _height(mask: np.ndarray) -> int:
    """The rows a (H, W) bool mask spans, px (0 when empty)."""
    ys = np.nonzero(mask.any(axis=1))[0]
    return int(ys[-1] - ys[0] + 1) if len(ys) else 0


def _split(ink: dict, mask: np.ndarray, box, tall: float, p: dict, classify) -> list[np.ndarray]:
    """A digit's (H, W) bool mask -> the masks of its digits, left to right: when wider than split_try x
    the digits' height tall, cut in two where the product of the halves' confidences is highest, if the
    width and that evidence say two (below); each half again."""
    y0, x0, y1, x1 = box
    whole = _piece(ink, mask, p)
    if x1 - x0 <= p["split_try"] * tall or whole is None:
        return [mask]
    mid = (y0 + y1 - 1) / 2
    rows, cols = np.indices(mask.shape)
    pairs, inputs = [], [whole[0]]
    for c, slant in _cuts(mask, box, p):
        left = mask & (cols - slant * (mid - rows) + 0.5 < c)
        right = mask & ~left
        # Each half a whole digit's height (a 7's bar cut off its stem is none).
        if all(_height(half) >= p["part_rel"] * tall for half in (left, right)):
            a, b = _piece(ink, left, p), _piece(ink, right, p)
            if a is not None and b is not None:
                pairs.append((left, right))
                inputs += [a[0], b[0]]
                if len(pairs) == int(p["split_tries"]):
                    break
    if not pairs:
        return [mask]
    conf = classify(np.stack(inputs)).max(axis=1)  # (1 + 2 x pairs,): the whole, then each cut's halves
    both = conf[1:].reshape(-1, 2).prod(axis=1)
    best = int(np.argmax(both))
    # Two digits when wide and the classifier is surer of the halves than of the whole: by their width in
    # digits' heights plus split_evidence x the log of (the halves' confidences' product / the whole's).
    if (x1 - x0) / tall + p["split_evidence"] * np.log(max(float(both[best]), 1e-30) / max(float(conf[0]), 1e-30)) <= p["split_at"]:
        return [mask]
    out = []
    for half in pairs[best]:
        ys, xs = np.nonzero(half.any(axis=1))[0], np.nonzero(half.any(axis=0))[0]
        out += _split(ink, half, (int(ys[0]), int(xs[0]), int(ys[-1]) + 1, int(xs[-1]) + 1), tall, p, classify)
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
        lines.append([piece for piece in (_piece(ink, mask, p) for mask in masks) if piece is not None])
    flat = [x for line in lines for x, _ in line]
    probs = classify(np.stack(flat)) if flat else np.zeros((0, 10), np.float32)
    out, n = [], 0
    for line in lines:
        out.append([{"input": x, "box": box, "probs": probs[n + i]} for i, (x, box) in enumerate(line)])
        n += len(line)
    return out


def _evidence(probs: np.ndarray) -> float:
    """Mean log-confidence over a number's digits, (N, classes) probabilities: the evidence for one way of
    turning it."""
    conf = probs.max(axis=1).astype(np.float64)
    return float(np.mean(np.log(np.maximum(conf, 1e-30)))) if len(probs) else -np.inf


def _number(g: np.ndarray, inverted: bool, p: dict, unsure: bool, frame, classify):
    """Steps 3-7 for a number on a grey (H, W) image of dark ink on light paper -> (the single digit's
    input, box and info as _read gives them, the digits per line with boxes in working pixels)."""
    ink = _ink(g, inverted, p, frame)
    marks = _plausible(ink["d3"], ink["t"], ink["desk"], p)
    x, box = _input(ink, _one(ink, p, unsure, marks), p)  # the single digit, exactly as preprocess reads it
    ink["info"]["box"] = box
    lines = _digits(ink, p, classify, marks)
    if _vertical(*marks[:2], p):
        # A column of marks: the number turned 90 degrees. Read it turned counterclockwise; the way of the
        # two is the one whose digits, these same pieces as read or turned upside down, the classifier is
        # surer of on the whole (the mean log-confidence); read again when that is the other way.
        lines = _digits(_turn(ink, 1), p, classify)
        flat = [dg["input"] for line in lines for dg in line]
        k = 1
        if flat and _evidence(classify(np.stack([np.rot90(x, 2) for x in flat]))) > _evidence(
                np.stack([dg["probs"] for line in lines for dg in line])):
            k, lines = -1, _digits(_turn(ink, -1), p, classify)
        for line in lines:
            for dg in line:
                dg["box"] = _unturn(dg["box"], k, g.shape)
    return x, ink["info"], lines


def read_number(image, p: dict, classify):
    """Any image -> (the single digit's input (canvas, canvas), the info of --explain, the digits per line
    as _digits gives them, boxes in working pixels). classify: (N, canvas, canvas) float32 -> (N, classes)
    probabilities. ImageError exactly when the single digit's reading raises it."""
    return _polar(image, p, lambda g, inverted, p, unsure, frame: _number(g, inverted, p, unsure, frame, classify))
