// Marks: the twin of export/reader/marks.py: the 8-connected components of a mask, what each holds, the
// plausible ones, and the digit among them (step 6).

import { _components, _max2, _min2, f32 } from "./filters.js";
import { ImageError } from "./image.js";
import { _desk } from "./paper.js";

// marks.py _marks: per 8-connected mark of a mask: its runs, area, ink mass (summed d), centre,
// box (y0, x0, y1, x1; ends exclusive), longer side, frame contact, reach into the frame, the paper
// level's steepest drop and step beside it, and the ground around it.
export function _marks(mask, d, paper, p) {
  const { h, w } = mask, { rows, starts, ends, comp, n } = _components(mask);
  // Row prefix sums of darkness in float32 (np.cumsum), the run's mass their float32 difference.
  const csum = new Float32Array(h * (w + 1));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) csum[y * (w + 1) + x + 1] = f32(csum[y * (w + 1) + x] + d.px[y * w + x]);
  const m = {
    rows, starts, ends, comp, n, area: new Float64Array(n), mass: new Float64Array(n), cy: new Float64Array(n),
    cx: new Float64Array(n), y0: new Int32Array(n).fill(h), x0: new Int32Array(n).fill(w), y1: new Int32Array(n),
    x1: new Int32Array(n), side: new Int32Array(n), peak: new Float64Array(n), contact: new Float64Array(n),
    rim: new Uint8Array(n), corner: new Uint8Array(n), reach: new Float64Array(n), drop: new Float64Array(n).fill(1), step: new Float64Array(n).fill(1),
    ground: new Float64Array(n),
  };
  const e = Math.max(1, Math.floor(p.edge * Math.min(h, w) + 0.5));
  let ratio = null, drop = null; // the paper level's steepest step either way, and its steepest drop
  if (paper) { // None: the frame shows no desk
    const win = 2 * Math.trunc(p.desk_reach) + 1, eps = f32(1e-6);
    const low = _min2(paper, win), high = _max2(paper, win);
    ratio = new Float32Array(h * w);
    drop = new Float32Array(h * w);
    for (let i = 0; i < ratio.length; i++) {
      ratio[i] = f32(low.px[i] / Math.max(high.px[i], eps));
      drop[i] = f32(low.px[i] / Math.max(paper.px[i], eps));
    }
  }
  for (let i = 0; i < rows.length; i++) {
    const c = comp[i], y = rows[i], s = starts[i], t = ends[i], len = t - s;
    m.area[c] += len;
    m.mass[c] += f32(csum[y * (w + 1) + t] - csum[y * (w + 1) + s]);
    m.cy[c] += y * len;
    m.cx[c] += ((s + t - 1) / 2) * len;
    m.y0[c] = Math.min(m.y0[c], y); m.y1[c] = Math.max(m.y1[c], y + 1);
    m.x0[c] = Math.min(m.x0[c], s); m.x1[c] = Math.max(m.x1[c], t);
    for (let x = s; x < t; x++) {
      m.peak[c] = Math.max(m.peak[c], d.px[y * w + x]);
      if (y < e || y >= h - e || x < e || x >= w - e) m.contact[c] += 1;
      if (y < e || y >= h - e) m.corner[c] |= 1; // a top or bottom margin ...
      if (x < e || x >= w - e) m.corner[c] |= 2; // ... and a left or right one: in a corner (3)
      m.reach[c] = Math.max(m.reach[c], Math.min(y, h - 1 - y, x, w - 1 - x)); // px from the nearest frame edge
      if (ratio) {
        m.step[c] = Math.min(m.step[c], ratio[y * w + x]);
        m.drop[c] = Math.min(m.drop[c], drop[y * w + x]);
      }
    }
  }
  for (let c = 0; c < n; c++) {
    m.cy[c] /= Math.max(m.area[c], 1);
    m.cx[c] /= Math.max(m.area[c], 1);
    m.side[c] = Math.max(m.y1[c] - m.y0[c], m.x1[c] - m.x0[c]);
    m.rim[c] = m.contact[c] >= m.area[c] || m.reach[c] < 2 * e ? 1 : 0; // all of it within the frame's margin, or 2e of it
    m.corner[c] = m.corner[c] === 3 ? 1 : 0;
    m.contact[c] /= e;
    m.reach[c] /= Math.min(h, w); // its reach into the frame: its deepest pixel's distance, / short side
  }
  if (!paper) return m; // no desk in the frame: the ground is never asked for
  // The ground: mean darkness of the pixels in the mark's box that are not the mark's (np.cumsum in
  // float64 down the columns, then along the rows).
  const W = w + 1, ii = new Float64Array((h + 1) * W);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) ii[(y + 1) * W + x + 1] = ii[y * W + x + 1] + d.px[y * w + x];
  for (let y = 1; y <= h; y++) for (let x = 1; x <= w; x++) ii[y * W + x] += ii[y * W + x - 1];
  for (let c = 0; c < n; c++) {
    const y0 = m.y0[c], x0 = m.x0[c], y1 = m.y1[c], x1 = m.x1[c];
    const inbox = ii[y1 * W + x1] - ii[y0 * W + x1] - ii[y1 * W + x0] + ii[y0 * W + x0];
    m.ground[c] = (inbox - m.mass[c]) / Math.max((y1 - y0) * (x1 - x0) - m.area[c], 1);
  }
  return m;
}

// marks.py _paint: the mask of the pixels of the marks where keep[mark] is true.
export function _paint(m, keep, h, w) {
  const out = new Uint8Array(h * w);
  for (let i = 0; i < m.rows.length; i++) {
    if (keep[m.comp[i]]) out.fill(1, m.rows[i] * w + m.starts[i], m.rows[i] * w + m.ends[i]);
  }
  return { h, w, px: out };
}

// marks.py _plausible: the marks darker than t -> {m, ok, inside} (ok: plausible ink of a digit, inside:
// not desk), or an ImageError when none is plausible. Shared by the digit (below) and the number (segment.js).
export function _plausible(d, t, paper, p) {
  const { h, w } = d, s = Math.min(h, w), tt = f32(t), above = new Uint8Array(h * w);
  for (let i = 0; i < above.length; i++) above[i] = d.px[i] > tt ? 1 : 0;
  const m = _marks({ h, w, px: above }, d, paper, p);
  if (m.n === 0) throw new ImageError("no digit found (blank image)");
  const desk = _desk(m, p), ok = new Uint8Array(m.n), inside = new Uint8Array(m.n), minSide = Math.max(3, p.min_size * s);
  let top = 0; // peak[ok].max(initial=0)
  for (let c = 0; c < m.n; c++) {
    inside[c] = desk[c] ? 0 : 1;
    ok[c] = m.side[c] >= minSide && m.area[c] >= p.min_thickness * m.side[c] ** 2 && !desk[c] ? 1 : 0;
    if (ok[c]) top = Math.max(top, m.peak[c]);
  }
  const least = Math.max(p.mark_ink, p.mark_peak * top);
  let any = false;
  for (let c = 0; c < m.n; c++) {
    ok[c] = ok[c] && m.peak[c] >= least && m.peak[c] - m.ground[c] >= p.mark_contrast ? 1 : 0; // darker than its ground
    any ||= !!ok[c];
  }
  if (!any) throw new ImageError("no digit found (blank image)");
  return { m, ok, inside };
}

// marks.py _digit: the mask of the marks darker than t that make the digit, or an ImageError
// (`marks`: _plausible's answer, when already known).
export function _digit(d, t, paper, p, marks = null) {
  const { h, w } = d, s = Math.min(h, w);
  const { m, ok, inside } = marks ?? _plausible(d, t, paper, p);
  let best = 0, bestScore = -Infinity;
  for (let c = 0; c < m.n; c++) {
    const r = Math.hypot(m.cy[c] - (h - 1) / 2, m.cx[c] - (w - 1) / 2) / s;
    const score = ok[c] ? m.mass[c] / (1 + p.centre_weight * r) : -1;
    if (score > bestScore) { bestScore = score; best = c; } // np.argmax: the first of equals
  }
  const g = p.merge * m.side[best], keep = new Uint8Array(m.n);
  for (let c = 0; c < m.n; c++) {
    const near = inside[c] && m.y1[c] > m.y0[best] - g && m.y0[c] < m.y1[best] + g
      && m.x1[c] > m.x0[best] - g && m.x0[c] < m.x1[best] + g; // boxes overlap the digit's, grown by g
    keep[c] = near && m.mass[c] >= p.merge_min * m.mass[best] ? 1 : 0;
  }
  keep[best] = 1;
  return _paint(m, keep, h, w);
}
