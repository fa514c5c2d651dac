"""The paper: polarity (step 2), the paper level and darkness against it (step 3), and the desk around a
sheet (step 4)."""

from __future__ import annotations

import numpy as np

from .filters import _border, _boxes, _components, _max2, _min2, _odd, _pixels


def _polarities(g: np.ndarray, k: int, p: dict) -> list[bool]:
    """Polarity, as the readings to try in order (True = light ink on a dark ground, invert it). A light
    frame: dark ink on paper. A dark frame: light ink, unless (in images with a shorter side of
    polarity_min_side px or more) most of the bright part is k px wide, as a sheet on a desk is; in
    between (a very bold digit, a sheet broken up by shadow) try dark ink first, then light."""
    lo, hi = float(g.min()), float(g.max())
    if hi <= lo or np.median(_border(g)) > (lo + hi) / 2:
        return [False]
    if min(g.shape) < p["polarity_min_side"]:  # a crop or an icon, not a photo of a sheet on a desk
        return [True]
    kc = _odd(k / 4, 3)  # first close gaps this narrow: rules, grid lines and ink do not break a sheet up
    bright = (_min2(_max2(g, kc), kc) > (lo + hi) / 2).astype(np.float32)
    wide = _max2(_min2(bright, k), k)  # opening: bright regions at least k x k survive
    survive = float(wide[bright > 0].mean())
    return [True] if survive < p["sheet_wide"][0] else [False, True] if survive < p["sheet_wide"][1] else [False]


def _darkness(g: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Step 3 on a grey (H, W) image of dark ink on light paper -> the paper level (H, W) and the darkness
    relative to it (H, W), 0 paper, 1 black ink."""
    h, w = g.shape
    k = _odd(p["paper_window"] * min(h, w), 3)
    # Paper level, locally: a grey closing fills every dark mark narrower than k px with the paper
    # around it and keeps gradients, shadows and a desk wider than k. Darkness relative to that level.
    # First, JPEG ringing: along a sheet's edge on a dark desk a JPEG overshoots, a bright line 1-2 px
    # wide that the closing's max would spread over k px as the paper's level. An opening (min, then max,
    # over paper_speck px) removes it where a pixel within paper_speck px is under speck_dark x as bright.
    o = int(p["paper_speck"])
    g_paper = np.where(_min2(g, 2 * o + 1) < p["speck_dark"] * g, _max2(_min2(g, o), o), g)  # (H, W)
    paper = _fill_cores(_min2(_max2(g_paper, k), k), p)
    d = np.clip((paper - g) / np.maximum(paper, p["paper_floor"]), 0, 1)  # (H, W): 0 paper, 1 black ink
    return paper, d


def _fill_cores(paper: np.ndarray, p: dict) -> np.ndarray:
    """The paper level (H, W) with the cores of bold strokes filled. Where ink is wider than the closing's
    window (a marker digit close up, its strokes' joins), the closing leaves a basin at the ink's own level,
    and the stroke would read as an outline beside a "desk". Such a basin is darker than paper_core x the
    top level (shadows are lighter), the paper encloses it (desk always reaches the frame's edge) and it
    spans at most core_max of the short side (a sheet darkened by a shadow is wider): it takes the
    brightest paper level just around it (within core_ring px)."""
    h, w = paper.shape
    low = paper < p["paper_core"] * paper.max()
    rows, starts, ends, comp, n = _components(low)
    if n == 0:
        return paper
    framed = np.zeros(n, bool)  # left as it is: reaches the frame's edge (desk, or ink cut by the frame), or too wide
    np.logical_or.at(framed, comp, (rows == 0) | (rows == h - 1) | (starts == 0) | (ends == w))
    y0, x0, y1, x1 = _boxes(rows, starts, ends, comp, n, (h, w))
    framed |= np.maximum(y1 - y0, x1 - x0) > p["core_max"] * min(h, w)  # wider: a sheet in a shadow, not a core
    if framed.all():
        return paper
    label = np.zeros((h, w), np.float32)  # 1 + the basin's number, 0 elsewhere
    length = ends - starts
    pr, pc = _pixels(rows, starts, ends)
    label[pr, pc] = np.repeat(comp, length) + 1
    near = _max2(label, 2 * int(p["core_ring"]) + 1)  # (H, W) the highest basin number within core_ring px
    ring = (near > 0) & (label == 0)
    level = np.zeros(n, np.float32)
    np.maximum.at(level, near[ring].astype(np.int64) - 1, paper[ring])
    fill = np.where(framed, 0, level)  # (n,) the level each enclosed basin takes; 0: left as it is
    out = paper.copy()
    out[pr, pc] = np.maximum(paper[pr, pc], np.repeat(fill[comp], length))
    return out


def _desk_frame(paper: np.ndarray, p: dict) -> bool:
    """Step 4: does the frame show desk beside the sheet? When the paper level along desk_frame % of the
    frame's edge is far below its top (otherwise the step test of _desk is off)."""
    return float(np.percentile(_border(paper), p["desk_frame"])) < p["desk_step"] * float(paper.max())


def _desk(m: dict, p: dict) -> np.ndarray:
    """(n,) bool: desk, not ink on the sheet: marks that touch the frame along more than border_contact x
    their longer side, or in a corner, without reaching paper_window into it (strips the paper level's
    closing filled; a digit that touches the frame, close up or cut by it, reaches further in, or touches it
    along at most cut_contact x its side and is cut_contrast darker than its ground) or lie
    wholly at its edge, that border a paper level below desk_drop x their own
    (a sheet's edge, seen from the sheet), or that lie at such a step either way on a ground at least
    desk_ground dark (a sheet's edge, seen from the desk); for a mark that reaches paper_window into the
    frame without touching its edge, only a step below desk_edge counts (a shadow's is shallower)."""
    step = (m["step"] < p["desk_step"]) & (m["ground"] >= p["desk_ground"])
    cut = (m["contact"] <= p["cut_contact"] * m["side"]) & (m["peak"] - m["ground"] >= p["cut_contrast"])  # a cut digit
    strip = (((m["contact"] > p["border_contact"] * m["side"]) & ~cut) | m["corner"]) & (m["reach"] < p["paper_window"])
    edge = (m["drop"] < p["desk_drop"]) | step
    # A mark that reaches paper_window into the frame without touching its edge is ink on the sheet in a
    # shadow (0.55-0.8 as bright), unless the step beside it is a sheet's edge on a desk (0.1-0.5).
    inner = (m["contact"] == 0) & (m["reach"] >= p["paper_window"])
    edge = np.where(inner, np.minimum(m["drop"], m["step"]) < p["desk_edge"], edge)
    return strip | m["rim"] | edge
