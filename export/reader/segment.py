"""A whole number (step 6 for many digits): the plausible marks grouped into digits, in reading order.

The ink is found as for one digit (preprocess._ink: steps 3-5, the same threshold t); then:
  - lines: the marks of a digit's height whose vertical extents overlap lie on one line, lines top to
    bottom; a shorter mark (a part: a 5's bar, half a broken 8; a speck) goes to the nearest line;
  - digits: on a line, each mark of a digit's height is a digit, left to right, even where slanted
    writing makes neighbours overlap; a part joins the digit it overlaps; marks that overlap much, or
    lie one above the other (a 4 broken across), join where the classifier reads them better as one;
  - no digits: specks and dots (small beside the number's digits), underlines and dashes (flat and long);
  - touching digits: a digit wider than the digits are tall may be two: it is cut along slanted columns
    of little ink where the classifier is surest of both halves, and kept cut when its width and that
    evidence say two (_two; the classifier, trained with not-digits, is unsure of a pair or a piece); a
    half that may be two digits itself (three touching) is weighed by its own best cut;
  - turned 90 degrees: when the marks stand in a column (a number written along the long side of a
    sheet, photographed turned), the image is turned and read both ways; the way is the one whose digits
    the classifier reads with the higher mean log-confidence: the whole number decides; one or two marks
    in a column (touching digits merged), when the classifier is unsure of them upright, and marks that share
    columns more often than lines (two lines turned), are read turned where that gives 3 digits or more,
    read more surely than upright;
  - one digit: digits found all within the single digit's box, no wider than one digit may be, are that
    digit (a 7 and its bar apart).
Each digit then goes through MNIST's own steps (step 7) into its own canvas x canvas input. Every input
the number reader classifies, to weigh a cut or to read a digit, is read five times, moved a pixel each
way (_shifted). Where a line model is at hand, each line of a number of two digits or more is then read
again, whole, by it (lines.py). A number of two digits or more is then read a second time, the same way, on
a crop of the input around its digits (read_number's second look). Every number of it is in PREPROCESSING
(params.py).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .image import ImageError, _grey
from .lines import read_lines
from .marks import _paint, _plausible
from .preprocess import _input, _ink, _one, _polar_grey, _with


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


def _columns(whole, parts, m: dict, tall: float, p: dict) -> list[list[int]]:
    """The whole marks and the parts of one line -> the digits, lists of mark indices, left to right.
    Whole marks are digits of their own, even where slanted writing makes neighbours overlap along the
    line, unless one overlaps the digit before it by more than join_overlap x the narrower (the two
    strokes of a broken 4). A part (a 5's bar, a 7's, half a broken 8) joins the digit its horizontal
    extent overlaps most, or else the nearest within part_gap x tall; parts near no digit make digits of
    their own where they overlap one another."""
    groups = []  # [x0, x1, members]
    for i in sorted(whole, key=lambda i: (m["x0"][i] + m["x1"][i], m["y0"][i], i)):
        x0, x1 = int(m["x0"][i]), int(m["x1"][i])
        g = groups[-1] if groups else None
        if g and min(x1, g[1]) - max(x0, g[0]) > p["join_overlap"] * min(x1 - x0, g[1] - g[0]):
            g[0], g[1] = min(g[0], x0), max(g[1], x1)
            g[2].append(int(i))
        else:
            groups.append([x0, x1, [int(i)]])
    lone = []  # parts near no digit
    for i in sorted(parts, key=lambda i: (m["x0"][i], m["y0"][i], i)):
        x0, x1 = int(m["x0"][i]), int(m["x1"][i])
        best, most = None, -p["part_gap"] * tall  # overlap in px (negative: the gap between them)
        for g in groups:
            ov = min(x1, g[1]) - max(x0, g[0])
            if ov > most:
                best, most = g, ov
        if best is None:
            if lone and min(x1, lone[-1][1]) - max(x0, lone[-1][0]) > 0:
                lone[-1][0], lone[-1][1] = min(lone[-1][0], x0), max(lone[-1][1], x1)
                lone[-1][2].append(int(i))
            else:
                lone.append([x0, x1, [int(i)]])
        elif m["mass"][i] >= p["merge_min"] * sum(m["mass"][j] for j in best[2]):  # dust beside a digit is no part
            best[2].append(int(i))
    return [g[2] for g in sorted(groups + lone, key=lambda g: (g[0] + g[1], g[2][0]))]


def _box(members, m: dict) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) around the marks, ends exclusive."""
    return (int(min(m["y0"][i] for i in members)), int(min(m["x0"][i] for i in members)),
            int(max(m["y1"][i] for i in members)), int(max(m["x1"][i] for i in members)))


def _sized(m: dict, ok: np.ndarray) -> np.ndarray:
    """The plausible marks of a digit's size: their longer side at least half the median's -> indices."""
    idx = np.nonzero(ok)[0]
    return idx[m["side"][idx] >= 0.5 * np.median(m["side"][idx])] if len(idx) else idx


def _vertical(m: dict, ok: np.ndarray, p: dict) -> int:
    """Do the marks stand in a column (a number turned 90 degrees)? The plausible marks of a digit's size
    (their longer side at least half the median's) -> how many there are, when their box together is more
    than turn_tall x as tall as wide, else 0. Three or more: a column of digits (one upright line, or two, is
    far wider than tall). One or two, more than turn_merged x as tall as wide: perhaps a turned number whose
    touching digits merged into one or two marks, perhaps one upright digit (a 1, a 7): the classifier
    decides (_number)."""
    idx = _sized(m, ok)
    if len(idx) == 0:
        return 0
    h = int(m["y1"][idx].max() - m["y0"][idx].min())
    w = int(m["x1"][idx].max() - m["x0"][idx].min())
    return len(idx) if h > p["turn_tall" if len(idx) >= 3 else "turn_merged"] * w else 0


def _across(m: dict, ok: np.ndarray, p: dict) -> bool:
    """Do 3 or more marks of a digit's size (as _vertical takes them) share columns more often than lines?
    Pairs whose horizontal extents overlap by more than line_overlap x the shorter, against pairs whose
    vertical extents do (as _lines groups a line): the rows and columns of a number of two lines turned
    90 degrees, whose box is about as tall as wide."""
    idx = _sized(m, ok)

    def pairs(a0: np.ndarray, a1: np.ndarray) -> int:  # (n,) extents -> pairs that overlap so
        over = np.minimum(a1[:, None], a1[None]) - np.maximum(a0[:, None], a0[None])
        shorter = np.minimum((a1 - a0)[:, None], (a1 - a0)[None])
        return int(np.triu(over > p["line_overlap"] * shorter, 1).sum())

    return len(idx) >= 3 and pairs(m["x0"][idx], m["x1"][idx]) > pairs(m["y0"][idx], m["y1"][idx])


def _groups(m: dict, ok: np.ndarray, inside: np.ndarray, p: dict) -> tuple[list[list[list[int]]], float]:
    """The digits as mark indices, per line (top down), per digit (left to right), and the digits'
    typical height in px (the median of the plausible marks')."""
    idx = np.nonzero(ok)[0]
    heights = m["y1"][idx] - m["y0"][idx]
    # px: the number's digits' height, the median of the plausible marks' at least speck_rel x the tallest
    top = heights.max()
    tall = float(np.median(heights[heights >= p["speck_rel"] * top]))
    # Marks too small to be a digit by themselves (a 5's bar in a small number) may still be parts of one:
    # as dark and as clear of their ground as a digit's marks.
    least = max(p["mark_ink"], p["mark_peak"] * float(m["peak"][ok].max()))
    loose = inside & ~ok & (m["peak"] >= least) & (m["peak"] - m["ground"] >= p["mark_contrast"])
    # Lines from the whole marks (a digit's height: at least part_rel x the higher median of the heights
    # above, px; beside a single digit, a stray stroke half its height is no digit, which the median, the
    # mean of the two, would make one); each part (shorter: a 5's bar, a 7's, half a broken 8; a speck)
    # goes to the line nearest its centre, within part_reach x tall of it (a 5's bar may float above its
    # digit, clear of the line's extent); the others are no digit. An underline (flat, long, longer than a
    # digit is tall) is part of no digit.
    near = np.sort(heights[heights >= p["speck_rel"] * top])
    high = p["part_rel"] * float(near[len(near) // 2])
    h, w = m["y1"] - m["y0"], m["x1"] - m["x0"]
    under = (h < p["flat_rel"] * tall) & (w > p["flat_long"] * h) & (w > tall)
    whole = [int(i) for i in idx if h[i] >= high and not under[i]]
    rows = _lines(whole, m, p)
    spans = [(min(m["y0"][i] for i in line), max(m["y1"][i] for i in line)) for line in rows]
    parts = [[] for _ in rows]
    for i in np.nonzero((ok | loose) & ~under)[0]:
        if i in whole:
            continue
        cy = m["cy"][i]
        gaps = [max(y0 - cy, cy - (y1 - 1), 0) for y0, y1 in spans]  # px from the line's extent
        k = int(np.argmin(gaps)) if gaps else -1
        if k >= 0 and gaps[k] <= p["part_reach"] * tall:
            parts[k].append(int(i))
    lines = [_columns(line, pl, m, tall, p) for line, pl in zip(rows, parts)]
    out = []
    for line in lines:
        keep = []
        for g in line:
            y0, x0, y1, x1 = _box(g, m)
            h, w = y1 - y0, x1 - x0
            if max(h, w) < p["speck_rel"] * tall or not ok[g].any():
                continue  # a speck or a dot, small beside the digits, or parts of none
            if h < high and not any(i in whole for i in g):
                continue  # parts near no digit, together shorter than a digit: a stray stroke
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


def _split(ink: dict, mask: np.ndarray, box, tall: float, p: dict, classify, conf=None,
           deep: bool = True) -> tuple[list[np.ndarray], float]:
    """A digit's (H, W) bool mask -> the masks of its digits, left to right, and the product of their
    confidences: when wider than split_try x the digits' height tall, cut in two where the product of the
    halves' confidences is highest, if the width and that evidence say two (_two); each half again. A half
    wider than split_deep x tall may itself be two digits (three touching): when weighing a cut, it counts
    with the confidence its own best reading gives it (cut as here, without this look further ahead), not as
    one piece, which the classifier doubts. conf: the mask's confidence as one piece (a half's, known)."""
    y0, x0, y1, x1 = box
    whole = _piece(ink, mask, p)
    if whole is None:
        return [mask], 0.0
    if x1 - x0 <= p["split_try"] * tall:
        return [mask], conf  # (None at the top, where no one asks)
    mid = (y0 + y1 - 1) / 2
    sub = mask[y0:y1, x0:x1]  # the mask's pixels lie in its box: cut there, not over the whole image
    rows, cols = np.indices(sub.shape)
    rows, cols = rows + y0, cols + x0
    pairs, boxes, inputs = [], [], [whole[0]]
    for c, slant in _cuts(mask, box, p):
        left = sub & (cols - slant * (mid - rows) + 0.5 < c)
        right = sub & ~left
        # Each half a whole digit's height (a 7's bar cut off its stem is none).
        if all(_height(half) >= p["part_rel"] * tall for half in (left, right)):
            halves = []  # each half as a (H, W) mask of the whole image, as _piece takes them
            for half in (left, right):
                full = np.zeros_like(mask)
                full[y0:y1, x0:x1] = half
                halves.append(full)
            hb = [_bounds(half, y0, x0) for half in (left, right)]
            a, b = _piece(ink, halves[0], p), _piece(ink, halves[1], p)
            if a is not None and b is not None:
                pairs.append(halves)
                boxes.append(hb)
                inputs += [a[0], b[0]]
                if len(pairs) == int(p["split_tries"]):
                    break
    conf = classify(np.stack(inputs)).max(axis=1)  # (1 + 2 x pairs,): the whole, then each cut's halves
    if not pairs:
        return [mask], float(conf[0])
    half_conf = conf[1:].reshape(-1, 2).astype(np.float64)  # (pairs, 2)
    for k, pair in enumerate(pairs if deep else []):
        for j, half in enumerate(pair):
            hb = boxes[k][j]
            if hb[3] - hb[1] > p["split_deep"] * tall:  # read as it would be split, one level deep
                _, score = _split(ink, half, hb, tall, p, classify, half_conf[k, j], False)
                half_conf[k, j] = max(half_conf[k, j], score)
    both = half_conf.prod(axis=1)
    best = int(np.argmax(both))
    # Two digits when wide and the classifier is surer of the halves than of the whole: by their width in
    # digits' heights plus split_evidence x the log of (the halves' confidences' product / the whole's).
    if not _two(x1 - x0, tall, both[best], conf[0], p):
        return [mask], float(conf[0])
    out, score = [], 1.0
    for j, half in enumerate(pairs[best]):
        masks, c = _split(ink, half, boxes[best][j], tall, p, classify, float(conf[1 + 2 * best + j]), deep)
        out += masks
        score *= c
    return out, score


def _bounds(mask: np.ndarray, y0: int = 0, x0: int = 0) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) around the pixels of a (h, w) bool mask cut from an image at (y0, x0), in the image's px,
    ends exclusive."""
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return y0 + int(ys[0]), x0 + int(xs[0]), y0 + int(ys[-1]) + 1, x0 + int(xs[-1]) + 1


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


def _two(w: float, tall: float, both: float, whole: float, p: dict) -> bool:
    """Two digits, not one, by the width w px of the whole in digits' heights plus split_evidence x the log
    of (the product of the two's confidences / the whole's) (both numbers chosen on generated numbers, seed 5)."""
    return w / tall + p["split_evidence"] * np.log(max(float(both), 1e-30) / max(float(whole), 1e-30)) > p["split_at"]


def _join(ink: dict, m: dict, line, tall: float, p: dict, classify) -> list[list[int]]:
    """The digits of a line, left to right -> the same, where a digit overlapping the one before it along
    the line makes one digit with it (the two strokes of a 4, a 7 and its bar) by the evidence _split
    weighs (_two): joined, unless they are two. Also pieces one above the other."""
    out = [list(line[0])] if line else []
    for g in line[1:]:
        prev = out[-1]
        a, b = _box(prev, m), _box(g, m)
        # overlapping along the line by more than join_try x the narrower, or one above the other (their
        # rows apart, their columns within part_gap x tall: a 4 broken across its middle)
        over = min(a[3], b[3]) - max(a[1], b[1])
        if over > p["join_try"] * min(a[3] - a[1], b[3] - b[1]) or (
                min(a[2], b[2]) <= max(a[0], b[0]) and over >= -p["part_gap"] * tall):
            pieces = []
            for marks in (prev + g, prev, g):
                keep = np.zeros(m["n"], bool)
                keep[marks] = True
                pieces.append(_piece(ink, _paint(m, keep, ink["d"].shape), p))
            if all(x is not None for x in pieces):
                conf = classify(np.stack([x for x, _ in pieces])).max(axis=1)  # (3,): joined, before, this
                w = max(a[3], b[3]) - min(a[1], b[1])
                if not _two(w, tall, conf[1] * conf[2], conf[0], p):
                    out[-1] = prev + g
                    continue
        out.append(list(g))
    return out


def _digits(ink: dict, p: dict, classify, marks=None) -> list[list[dict]]:
    """The digits of a number, per line: {"input": (canvas, canvas), "box": (y0, x0, y1, x1) working px,
    "probs": (classes,)}."""
    m, ok, inside = marks or _plausible(ink["d3"], ink["t"], ink["desk"], p)
    groups, tall = _groups(m, ok, inside, p)
    groups = [_join(ink, m, line, tall, p, classify) for line in groups]
    # The digits' height again, now of the digits (a broken digit's pieces made it look small): the
    # median of theirs at least speck_rel x the tallest.
    heights = np.array([b[2] - b[0] for b in (_box(g, m) for line in groups for g in line)])
    tall = float(np.median(heights[heights >= p["speck_rel"] * heights.max()])) if len(heights) else tall
    lines = []
    for line in groups:
        masks = []
        for g in line:
            keep = np.zeros(m["n"], bool)
            keep[g] = True
            masks += _split(ink, _paint(m, keep, ink["d"].shape), _box(g, m), tall, p, classify)[0]
        lines.append([piece for piece in (_piece(ink, mask, p) for mask in masks) if piece is not None])
    flat = [x for line in lines for x, _ in line]
    probs = classify(np.stack(flat)) if flat else np.zeros((0, 10), np.float32)
    out, n = [], 0
    for line in lines:
        out.append([{"input": x, "box": box, "probs": probs[n + i]} for i, (x, box) in enumerate(line)])
        n += len(line)
    return out


def _evidence(lines) -> float:
    """Mean log-confidence over a number's digits (as _digits gives them): the evidence for one way of
    turning it."""
    conf = np.array([float(dg["probs"].max()) for line in lines for dg in line])
    return float(np.mean(np.log(np.maximum(conf, 1e-30)))) if len(conf) else -np.inf


def _number(g: np.ndarray, inverted: bool, p: dict, unsure: bool, frame, classify, line_model=None):
    """Steps 3-7 for a number on a grey (H, W) image of dark ink on light paper -> (the single digit's
    input, box and info as _read gives them, the digits per line with boxes in working pixels). A number
    of several digits has each line read again, whole, by the line model where there is one (lines.py)."""
    ink = _ink(g, inverted, p, frame)
    try:
        marks = _plausible(ink["d3"], ink["t"], ink["desk"], p)
    except ImageError as e:  # with what the steps saw, for --explain (as _one gives it)
        raise _with(e, ink["info"]) from None
    x, box = _input(ink, _one(ink, p, unsure, marks), p)  # the single digit, exactly as preprocess reads it
    ink["info"]["box"] = box
    column = _vertical(*marks[:2], p)
    upright = _digits(ink, p, classify, marks) if column < 3 else None

    def as_upright():
        return x, ink["info"], read_lines(ink, upright, p, line_model) if _several(x, box, upright, p, classify) else []

    # One or two marks in a column (touching digits of a turned number merged, or a digit upright: a 1, a 4
    # in two strokes) are tried turned only when the classifier is unsure of them upright (the geometric
    # mean of its confidences under turn_unsure: a digit alone is mostly surer; turning costs two readings).
    # So are marks that share columns more often than lines (a number of two lines turned: its box is no
    # column, about as tall as wide).
    doubtful = 0 < column < 3 and _evidence(upright) < np.log(p["turn_unsure"])
    if column < 3 and not doubtful and not _across(*marks[:2], p):
        return as_upright()
    # A column of marks: the number turned 90 degrees. Read it turned both ways; the way is the one whose
    # digits the classifier is surer of on the whole (the mean log-confidence; counterclockwise on a tie).
    # Each way is cut and grouped afresh: the pieces of the wrong way, merely turned upside down, are not
    # the pieces the right way cuts. The line model then reads the way chosen (its own reading of both ways
    # chose no better: docs/results.md).
    k, lines = max(((k, _digits(_turn(ink, k), p, classify)) for k in (1, -1)), key=lambda kl: _evidence(kl[1]))
    if column < 3 and (sum(map(len, lines)) < 3 or _evidence(lines) <= _evidence(upright)):
        # turned, one or two marks (or two lines) must read as 3 digits or more, and more surely than upright
        return as_upright()
    lines = read_lines(_turn(ink, k), lines, p, line_model)
    for line in lines:
        for dg in line:
            dg["box"] = _unturn(dg["box"], k, g.shape)
    return x, ink["info"], lines


def _several(x: np.ndarray, box, lines, p: dict, classify) -> bool:
    """Are the digits found more than the single digit's reading (x, its box (y0, x0, y1, x1))? Not when
    they all lie in its box and that box is no wider than one_wide x its height, or the classifier's
    evidence (_two, the box's width in its height) says it is one digit: a digit in strokes apart (a 7
    and its bar), a wide 2, read as themselves. Lines of two digits or more are never one digit (two short
    lines close together make a box as tall as wide)."""
    digits = [dg for line in lines for dg in line]
    y0, x0, y1, x1 = box
    inside = all(b[0] >= y0 and b[1] >= x0 and b[2] <= y1 and b[3] <= x1 for b in (dg["box"] for dg in digits))
    if len(digits) < 2 or not inside or (len(lines) > 1 and all(len(line) > 1 for line in lines)):
        return True
    if x1 - x0 <= p["one_wide"] * (y1 - y0):  # no wider than one digit may be
        return False
    # The digits' evidence as two digits would give it: their confidences' geometric mean, squared (a product
    # over five digits would weigh against any number of more than two).
    logs = [np.log(max(float(dg["probs"].max()), 1e-30)) for dg in digits]
    both = float(np.exp(2 * sum(logs) / len(logs)))
    return _two(x1 - x0, y1 - y0, both, float(classify(x[None]).max()), p)


def _shifted(classify, px: int):
    """classify reading each input as the mean of its probabilities over the input and its copies moved px
    up, down, left and right (zeros moved in). A digit cut from a number sits less well in its canvas than
    a digit alone (a neighbour's tail, a bit of its own lost, moves its centre of mass): the mean of the
    five reads whole numbers better (docs/results.md); a digit alone reads no better, and predict() reads
    it once."""
    if px <= 0:
        return classify

    def read(x: np.ndarray) -> np.ndarray:  # (N, canvas, canvas) -> (N, classes)
        h, w = x.shape[1:]
        padded = np.pad(x, ((0, 0), (px, px), (px, px)))  # zeros around: what a move brings in
        # moved down dy and right dx: out[r, c] = x[r - dy, c - dx], i.e. padded[r - dy + px, c - dx + px]
        moved = [x] + [padded[:, px - dy:px - dy + h, px - dx:px - dx + w]
                       for dy, dx in ((px, 0), (-px, 0), (0, px), (0, -px))]
        return classify(np.concatenate(moved)).reshape(len(moved), len(x), -1).mean(axis=0)
    return read


def _placed(box, info: dict, at=(0, 0)) -> list[int]:
    """A box (y0, x0, y1, x1) in the working pixels of a reading (its info: factor f, the (H, W) it read)
    -> [x0, y0, x1, y1] in the input's pixels, that reading's image lying at `at` (y, x) of the input."""
    f, (h, w), (ay, ax) = info["factor"], info["shape"], at
    y0, x0, y1, x1 = box
    return [ax + x0 * f, ay + y0 * f, ax + min(x1 * f, w), ay + min(y1 * f, h)]


def _around(boxes, shape, p: dict, size: float | None = None):
    """The crop (y0, x0, y1, x1) of an (H, W) input to read a number again: its digits' boxes ([x0, y0,
    x1, y1], input px) with second_look x a digit's size (px; by default their median height or width, the
    larger) around them; None when that is more than second_look_area of the input (its paper, threshold
    and scale would be much the same: a clean scan the number fills reads alike, at twice the time)."""
    b = np.array(boxes)
    if size is None:
        size = max(np.median(b[:, 3] - b[:, 1]), np.median(b[:, 2] - b[:, 0]))
    m = int(p["second_look"] * size)
    h, w = shape
    crop = (max(int(b[:, 1].min()) - m, 0), max(int(b[:, 0].min()) - m, 0),
            min(int(b[:, 3].max()) + m, h), min(int(b[:, 2].max()) + m, w))
    return crop if (crop[2] - crop[0]) * (crop[3] - crop[1]) <= p["second_look_area"] * h * w else None


def _column(lines, box, f: int) -> bool:
    """Do the digits of a reading (boxes [x0, y0, x1, y1], input px) stand in one column inside `box` (up to
    f px outside it: the first look's rounding)? A turned number merged into one tall mark reads so on its
    crop."""
    if len(lines) != 1:
        return False
    b = np.array([dg["box"] for dg in lines[0]], np.float64)
    inside = (b[:, :2] >= np.array(box[:2]) - f).all() and (b[:, 2:] <= np.array(box[2:]) + f).all()
    return bool(inside and np.ptp(b[:, 1] + b[:, 3]) > np.ptp(b[:, 0] + b[:, 2]))  # centres spread down, not across


def read_number(image, p: dict, classify, line_model=None):
    """Any image -> (the single digit's input (canvas, canvas), the info of --explain, the digits per line
    as _digits gives them, but boxes [x0, y0, x1, y1] in the input's pixels). classify: (N, canvas,
    canvas) float32 -> (N, classes) probabilities; the number's pieces are read with it moved by read_shift
    px (_shifted); line_model: (run, line) as lines.read_line takes it, or None to read digit by digit.
    ImageError exactly when the single digit's reading raises it.

    A number of two digits or more is read a second time, on a crop of the input around them
    (second_look x a digit's size more each way) when that is at most second_look_area of the input,
    and so is a single mark longer than one_wide x its width across (a number small in the photo, its
    digits merged); that reading is kept when it finds two digits or more (for a mark taller than wide,
    three in a column inside it: a turned number): the crop has its own paper level,
    threshold and specks, nearer the number's own than the whole photo's, and a finer working image
    when the number is small in it (docs/results.md)."""
    number = partial(_number, classify=_shifted(classify, int(p["read_shift"])), line_model=line_model)  # _polar_grey's reader
    a = _grey(image, p["luma"])
    x, info, lines = _polar_grey(a, p, number)
    lines = [[{**dg, "box": _placed(dg["box"], info)} for dg in line] for line in lines]
    digits = [dg for line in lines for dg in line]
    one = _placed(info["box"], info)  # the single digit's box
    w, h = one[2] - one[0], one[3] - one[1]
    crop, need = None, 2  # need: the digits the crop's reading must find to be kept
    if p["second_look"] > 0 and len(digits) > 1:
        crop = _around([dg["box"] for dg in digits], a.shape, p)
    elif p["second_look"] > 0 and max(w, h) > p["one_wide"] * min(w, h):
        # One mark, longer than one digit may be: a number small in a big photo (digits 2-5% of its short
        # side), merged into one mark by the reduction (each f x f block its darkest pixel closes the gaps
        # between the digits). Its crop, a digit's size around it, is read at a finer scale. A mark taller
        # than wide (a turned number) must read as 3 digits or more in a column inside it (_column): a 1 or
        # a 7 is as tall, and a speck or a rule's piece beside it would be read as a second digit.
        crop, need = _around([one], a.shape, p, min(w, h)), 2 if w > h else 3
    if crop is not None:
        y0, x0, y1, x1 = crop
        try:
            _, near, again = _polar_grey(a[y0:y1, x0:x1], p, number)
        except ImageError:  # nothing on the crop: keep the first reading
            again = []
        again = [[{**dg, "box": _placed(dg["box"], near, (y0, x0))} for dg in line] for line in again]
        if sum(map(len, again)) >= need and (need == 2 or _column(again, one, info["factor"])):
            lines = again
    return x, info, lines
