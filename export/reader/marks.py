"""Marks: the 8-connected components of a mask, what each holds, the plausible ones, and the digit among
them (step 6)."""

from __future__ import annotations

import numpy as np

from .filters import _boxes, _components, _max2, _min2, _pixels
from .image import ImageError
from .paper import _desk


def _marks(mask: np.ndarray, d: np.ndarray, paper: np.ndarray | None, p: dict) -> dict:
    """Per 8-connected mark of a (H, W) bool mask: its runs and, per mark, area (px), ink mass (summed d),
    centre, box (y0, x0, y1, x1; ends exclusive), longer box side, pixels on the frame's edge and the
    steepest step of the paper level beside it."""
    h, w = mask.shape
    rows, starts, ends, comp, n = _components(mask)
    length = ends - starts
    csum = np.pad(np.cumsum(d, axis=1), ((0, 0), (1, 0)))  # (H, W + 1) row prefix sums of darkness
    m = {"rows": rows, "starts": starts, "ends": ends, "comp": comp, "n": n,
         "area": np.bincount(comp, length, n), "mass": np.bincount(comp, csum[rows, ends] - csum[rows, starts], n)}
    m["cy"] = np.bincount(comp, rows * length, n) / np.maximum(m["area"], 1)
    m["cx"] = np.bincount(comp, (starts + ends - 1) / 2 * length, n) / np.maximum(m["area"], 1)
    y0, x0, y1, x1 = _boxes(rows, starts, ends, comp, n, (h, w))
    m.update(y0=y0, x0=x0, y1=y1, x1=x1, side=np.maximum(y1 - y0, x1 - x0))
    # Each mark's darkest pixel: expand the runs to pixels (row, col, mark).
    pr, pc = _pixels(rows, starts, ends)
    m["pixels"] = (pr, pc, np.repeat(comp, length))
    m["peak"] = np.zeros(n)
    np.maximum.at(m["peak"], m["pixels"][2], d[pr, pc])
    # Frame contact, px along the frame: its pixels within e px of the frame's edge, / e (a strip of desk
    # beside a sheet edge that runs almost along the frame's edge touches it through this margin).
    e = max(1, int(np.floor(p["edge"] * min(h, w) + 0.5)))
    near = (pr < e) | (pr >= h - e) | (pc < e) | (pc >= w - e)
    at_edge = np.bincount(m["pixels"][2], near, n)
    m["contact"] = at_edge / e
    m["rim"] = at_edge >= m["area"]  # all of it within that margin: a sliver of desk at a corner, a JPEG edge
    # In a corner: touching both a top or bottom margin and a left or right one (desk or grid beside it).
    m["corner"] = (np.bincount(m["pixels"][2], (pr < e) | (pr >= h - e), n) > 0) \
        & (np.bincount(m["pixels"][2], (pc < e) | (pc >= w - e), n) > 0)
    # Its reach into the frame: the largest distance of its pixels from the nearest frame edge, / short side.
    # Desk the closing filled in lies in strips narrower than paper_window; a digit that touches the frame
    # (a close-up, a digit cut by the frame) reaches further in.
    reach = np.zeros(n)
    np.maximum.at(reach, m["pixels"][2], np.minimum(np.minimum(pr, h - 1 - pr), np.minimum(pc, w - 1 - pc)))
    m["reach"] = reach / min(h, w)
    m["rim"] |= reach < 2 * e  # all of it within 2e px of the frame's edge: a rule's end, a sliver of desk
    # The paper level next to the mark, within desk_reach px: its steepest drop (the darkest level there /
    # the level under the mark) and its steepest step either way (the darkest / the brightest there). Ink
    # lies on paper whose level changes slowly. Desk filled in beside a sheet's edge borders unfilled desk,
    # far darker (a drop); grain of the desk just off the sheet's edge borders the sheet, far brighter
    # (a step up), but so may ink in a shadow: there the ground around the mark tells them apart.
    m["drop"], m["step"], m["ground"] = np.ones(n), np.ones(n), np.zeros(n)
    if paper is not None:  # None: the frame shows no desk
        win = 2 * int(p["desk_reach"]) + 1
        low = _min2(paper, win)
        np.minimum.at(m["drop"], m["pixels"][2], (low / np.maximum(paper, 1e-6))[pr, pc])
        np.minimum.at(m["step"], m["pixels"][2], (low / np.maximum(_max2(paper, win), 1e-6))[pr, pc])
        # The ground: mean darkness of the pixels in the mark's box that are not the mark's. Paper around
        # ink is near 0; desk around its grain is as dark as the grain nearly is.
        ii = np.pad(np.cumsum(np.cumsum(d, axis=0, dtype=np.float64), axis=1), ((1, 0), (1, 0)))  # (H + 1, W + 1)
        inbox = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
        m["ground"] = (inbox - m["mass"]) / np.maximum((y1 - y0) * (x1 - x0) - m["area"], 1)
    return m


def _paint(m: dict, keep: np.ndarray, shape) -> np.ndarray:
    """(H, W) bool: the pixels of the marks where keep (n,) is True."""
    out = np.zeros(shape, bool)
    pr, pc, lab = m["pixels"]
    sel = keep[lab]
    out[pr[sel], pc[sel]] = True
    return out


def _plausible(d: np.ndarray, t: float, paper: np.ndarray | None, p: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """The marks darker than t of a (H, W) darkness -> (the marks, ok (n,): plausible ink of a digit, inside
    (n,): not desk); ImageError when none is plausible. Shared by the digit (below) and the number (segment.py)."""
    s = min(d.shape)
    m = _marks(d > t, d, paper, p)
    if m["n"] == 0:
        raise ImageError("no digit found (blank image)")
    side, area, inside = m["side"], m["area"], ~_desk(m, p)
    ok = (side >= max(3, p["min_size"] * s)) & (area >= p["min_thickness"] * side**2) & inside
    ok &= m["peak"] >= max(p["mark_ink"], p["mark_peak"] * float(m["peak"][ok].max(initial=0)))
    ok &= m["peak"] - m["ground"] >= p["mark_contrast"]  # ink is darker than the ground around it (desk grain is not)
    if not ok.any():
        raise ImageError("no digit found (blank image)")
    return m, ok, inside


def _digit(d: np.ndarray, t: float, paper: np.ndarray | None, p: dict, marks=None) -> np.ndarray:
    """(H, W) bool: the marks darker than t that make the digit, or ImageError when none is plausible
    (`marks`: _plausible's answer, when already known)."""
    h, w = d.shape
    s = min(h, w)
    m, ok, inside = marks or _plausible(d, t, paper, p)
    side = m["side"]
    r = np.hypot(m["cy"] - (h - 1) / 2, m["cx"] - (w - 1) / 2) / s
    score = np.where(ok, m["mass"] / (1 + p["centre_weight"] * r), -1)
    best = int(np.argmax(score))
    g = p["merge"] * side[best]
    y0, x0, y1, x1 = m["y0"], m["x0"], m["y1"], m["x1"]
    near = inside & (y1 > y0[best] - g) & (y0 < y1[best] + g) \
        & (x1 > x0[best] - g) & (x0 < x1[best] + g)  # boxes overlap the digit's, grown by g on each side
    keep = near & (m["mass"] >= p["merge_min"] * m["mass"][best])
    keep[best] = True
    return _paint(m, keep, d.shape)
