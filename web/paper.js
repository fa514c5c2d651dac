// The paper: the twin of export/reader/paper.py: polarity (step 2), the paper level and darkness against
// it (step 3), and the desk around a sheet (step 4).

import { _border, _max2, _min2, _odd, f32, median, minMax, percentile32 } from "./filters.js";

// paper.py _polarities: the readings to try in order (true = light ink on a dark ground, invert).
export function _polarities(g, k, p) {
  const [lo, hi] = minMax(g.px), mid = f32((lo + hi) / 2);
  if (hi <= lo || median(_border(g)) > mid) return [false];
  if (Math.min(g.h, g.w) < p.polarity_min_side) return [true]; // a crop or an icon, not a photo of a sheet
  const kc = _odd(k / 4, 3); // first close gaps this narrow
  const closed = _min2(_max2(g, kc), kc), bright = new Float32Array(g.px.length);
  for (let i = 0; i < bright.length; i++) bright[i] = closed.px[i] > mid ? 1 : 0;
  const wide = _max2(_min2({ h: g.h, w: g.w, px: bright }, k), k); // opening: bright regions at least k x k
  let sum = 0, count = 0;
  for (let i = 0; i < bright.length; i++) if (bright[i] > 0) { sum += wide.px[i]; count++; }
  const survive = f32(sum / count);
  return survive < p.sheet_wide[0] ? [true] : survive < p.sheet_wide[1] ? [false, true] : [false];
}

// paper.py _darkness: step 3 on a grey image of dark ink on light paper -> {paper, d}: the paper level,
// locally (a grey closing, JPEG ringing beside a dark desk opened away first), and the darkness relative
// to it (0 paper, 1 black ink).
export function _darkness(g, p) {
  const { h, w } = g, n = h * w;
  const k = _odd(p.paper_window * Math.min(h, w), 3);
  const o = Math.trunc(p.paper_speck), dark = _min2(g, 2 * o + 1), opened = _max2(_min2(g, o), o);
  const gp = { h, w, px: new Float32Array(n) }, sd = f32(p.speck_dark);
  for (let i = 0; i < n; i++) gp.px[i] = dark.px[i] < f32(sd * g.px[i]) ? opened.px[i] : g.px[i];
  const paper = _min2(_max2(gp, k), k), floor = f32(p.paper_floor), dpx = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    dpx[i] = Math.min(Math.max(f32(f32(paper.px[i] - g.px[i]) / Math.max(paper.px[i], floor)), 0), 1);
  }
  return { paper, d: { h, w, px: dpx } };
}

// paper.py _desk_frame: step 4, does the frame show desk beside the sheet (the paper level along
// desk_frame % of the frame's edge far below its top)?
export function _desk_frame(paper, p) {
  const border = Float32Array.from(_border(paper)).sort();
  return percentile32(border, p.desk_frame) < p.desk_step * minMax(paper.px)[1];
}

// paper.py _desk: marks that are desk, not ink: along the frame's edge without reaching paper_window into
// it (strips the paper level's closing filled) or wholly at its edge, or at a sheet's edge (a drop in the
// paper level beside them, or a step either way on a dark ground).
export function _desk(m, p) {
  const out = new Uint8Array(m.n);
  for (let c = 0; c < m.n; c++) {
    const step = m.step[c] < p.desk_step && m.ground[c] >= p.desk_ground;
    const strip = (m.contact[c] > p.border_contact * m.side[c] || m.corner[c]) && m.reach[c] < p.paper_window;
    out[c] = strip || m.rim[c] || m.drop[c] < p.desk_drop || step ? 1 : 0;
  }
  return out;
}
