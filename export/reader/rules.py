"""Ruled and grid paper (step 5): the rules' darkness, and the darkness ink must exceed beside them."""

from __future__ import annotations

import numpy as np

from .filters import _odd, _open1, _run
from .image import ImageError
from .marks import _marks


def _rules(d: np.ndarray, p: dict) -> float | None:
    """The darkness of the ruled or grid lines of a (H, W) darkness image, or None when it shows none.

    Candidates: pixels thin across, long along a row or column (+-tilt). Rules have what strokes lack:
    they come in families of parallel lines across the sheet. So the candidate segments (8-connected, at
    least line_length long) of one direction count only when they lie on at least line_family distinct
    lines (positions across more than `thin` apart): a lone straight stroke (the stem of a 1, 4 or 7, a
    thin pen's bar) never does. Their darkness: per segment the line_percentile of its pixels, then the
    median over the segments, so a stroke that joins a grid's family does not set the rules' level."""
    s = min(d.shape)
    thin = max(4, int(np.floor(p["line_thin"] * s + 0.5)))  # px across
    length = max(40, int(np.floor(p["line_length"] * s + 0.5)))  # px along
    tol = _odd(length * np.tan(np.radians(p["line_tilt"])), 3)  # a tilted rule drifts this much across
    c = (d > p["line_noise"]).astype(np.float32)
    levels, count = [], 0
    for along in (1, 0):  # horizontal rules run along axis 1 (rows), vertical ones along axis 0
        across = 1 - along
        if d.shape[along] < length:  # too small to hold a rule
            continue
        t = c * (1 - _open1(c, thin + 1, across))  # in runs across no longer than `thin`
        band = _run(_run(t, tol, across, np.maximum), p["line_gap"], along, np.maximum)
        cand = t * _open1(band, length, along)  # (H, W) 0/1: rule pixels, broken where lines cross
        joined = _run(cand, p["line_gap"], along, np.maximum) > 0  # gaps of up to line_gap - 1 px bridged
        if along == 0:  # work on rows: transposed, a vertical rule runs along a row
            cand, joined, dd = cand.T, joined.T, d.T
        else:
            dd = d
        m = _marks(joined, dd, None, p)
        seg = np.nonzero((m["x1"] - m["x0"]) >= length)[0]  # segments long enough (extent along, px)
        if len(seg) == 0:
            continue
        # Segments on one line (positions across within `thin` of the previous) make a line; a rule broken
        # where strokes cross it keeps its pieces' sum. Lines spanning line_span of the frame are rules.
        seg = seg[np.argsort(m["cy"][seg], kind="stable")]
        line = np.concatenate([[0], np.cumsum(np.diff(m["cy"][seg]) > thin)])  # line number per segment
        span = np.bincount(line, m["x1"][seg] - m["x0"][seg])  # px along, per line
        rule = span >= p["line_span"] * d.shape[along]
        if rule.sum() < p["line_family"]:
            continue
        label = np.full(dd.shape, -1)
        label[m["pixels"][0], m["pixels"][1]] = m["pixels"][2]
        on = cand > 0
        lab, dark = label[on], dd[on]  # the rule pixels themselves (not the bridged gaps): segment, darkness
        for i in seg[rule[line]]:
            levels.append(float(np.percentile(dark[lab == i], p["line_percentile"])))
            count += int((lab == i).sum())
    if count < p["line_min"] * sum(d.shape) or not levels:
        return None
    return float(np.median(levels))


def _threshold(d: np.ndarray, peak: float, p: dict) -> float:
    """The darkness ink must exceed on a (H, W) darkness with this peak: ink_rel x peak, and clear of the
    noise; on ruled or grid paper, clearly darker than the rules too. ImageError when the page holds only
    rules."""
    level = _rules(d, p)
    # Ink stands out from the noise too, in photos (a shorter side of polarity_min_side px or more; in a
    # crop or an icon the ink can cover 40% of the frame, and the statistics below would measure the ink):
    # noise_k x its robust sigma (1.4826 x the median absolute deviation of the darkness; the paper is most
    # of the frame) above the median (the paper level, a running max, sits on the noise's peaks, so the
    # paper itself reads a little dark). Camera noise in a dim photo otherwise links into webs of "ink"
    # around a faint digit, or into blots on a dark desk.
    t = p["ink_rel"] * peak
    if min(d.shape) >= p["polarity_min_side"]:
        mid = float(np.median(d))
        t = max(t, mid + p["noise_k"] * 1.4826 * float(np.median(np.abs(d - mid))))
    if level is None:
        return t
    if peak < p["line_contrast"] * level:
        raise ImageError("no digit found (blank image; only ruled lines)")
    return min(max(t, p["line_margin"] * level), p["line_max_rel"] * peak)
