// The paper: the twin of export/reader/paper.py: polarity (step 2), the paper level and darkness against
// it (step 3), and the desk around a sheet (step 4).

import { _border, _boxes, _components, _max2, _min2, _odd, f32, median, minMax, percentile32 } from "./filters.js";

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
  const paper = _fill_cores(_min2(_max2(gp, k), k), p), floor = f32(p.paper_floor), dpx = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    dpx[i] = Math.min(Math.max(f32(f32(paper.px[i] - g.px[i]) / Math.max(paper.px[i], floor)), 0), 1);
  }
  return { paper, d: { h, w, px: dpx } };
}

// paper.py _fill_cores: the paper level with the cores of bold strokes filled: a basin the closing leaves
// below paper_core x the top level, enclosed by paper (not reaching the frame's edge) and spanning at most
// core_max of the short side, takes the brightest level within core_ring px around it.
export function _fill_cores(paper, p) {
  const { h, w } = paper, n = h * w, core = f32(f32(p.paper_core) * minMax(paper.px)[1]);
  const low = { h, w, px: new Uint8Array(n) };
  for (let i = 0; i < n; i++) low.px[i] = paper.px[i] < core ? 1 : 0;
  const { rows, starts, ends, comp, n: count } = _components(low);
  if (count === 0) return paper;
  const framed = new Uint8Array(count); // left as it is: reaches the frame's edge (desk, ink cut by it), or too wide
  for (let r = 0; r < rows.length; r++) {
    if (rows[r] === 0 || rows[r] === h - 1 || starts[r] === 0 || ends[r] === w) framed[comp[r]] = 1;
  }
  const { y0, x0, y1, x1 } = _boxes(rows, starts, ends, comp, count, h, w);
  for (let c = 0; c < count; c++) { // wider than core_max of the short side: a sheet in a shadow, not a core
    if (Math.max(y1[c] - y0[c], x1[c] - x0[c]) > p.core_max * Math.min(h, w)) framed[c] = 1;
  }
  if (framed.every((v) => v)) return paper;
  const label = { h, w, px: new Float32Array(n) }; // 1 + the basin's number, 0 elsewhere
  for (let r = 0; r < rows.length; r++) label.px.fill(comp[r] + 1, rows[r] * w + starts[r], rows[r] * w + ends[r]);
  const near = _max2(label, 2 * Math.trunc(p.core_ring) + 1), level = new Float32Array(count);
  for (let i = 0; i < n; i++) {
    if (near.px[i] > 0 && label.px[i] === 0) level[near.px[i] - 1] = Math.max(level[near.px[i] - 1], paper.px[i]);
  }
  const out = { h, w, px: Float32Array.from(paper.px) };
  for (let r = 0; r < rows.length; r++) {
    if (framed[comp[r]]) continue;
    for (let i = rows[r] * w + starts[r]; i < rows[r] * w + ends[r]; i++) out.px[i] = Math.max(paper.px[i], level[comp[r]]);
  }
  return out;
}

// paper.py _desk_frame: step 4, does the frame show desk beside the sheet (the paper level along
// desk_frame % of the frame's edge far below its top)?
export function _desk_frame(paper, p) {
  const border = Float32Array.from(_border(paper)).sort();
  return percentile32(border, p.desk_frame) < p.desk_step * minMax(paper.px)[1];
}

// paper.py _desk: marks that are desk, not ink: along the frame's edge without reaching paper_window into
// it (strips the paper level's closing filled; not a digit cut by the frame: a shorter contact, darker ink)
// or wholly at its edge, or at a sheet's edge (a drop in the paper level beside them, or a step either way
// on a dark ground; for marks reaching paper_window into the frame without touching its edge, only a step
// below desk_edge: shadows are lighter).
export function _desk(m, p) {
  const out = new Uint8Array(m.n);
  for (let c = 0; c < m.n; c++) {
    const step = m.step[c] < p.desk_step && m.ground[c] >= p.desk_ground;
    const cut = m.contact[c] <= p.cut_contact * m.side[c] && m.peak[c] - m.ground[c] >= p.cut_contrast; // a cut digit
    const strip = ((m.contact[c] > p.border_contact * m.side[c] && !cut) || m.corner[c]) && m.reach[c] < p.paper_window;
    // Reaching paper_window in and touching no edge: ink in a shadow, unless at a step as deep as a sheet's edge.
    const inner = m.contact[c] === 0 && m.reach[c] >= p.paper_window;
    const edge = inner ? Math.min(m.drop[c], m.step[c]) < p.desk_edge : m.drop[c] < p.desk_drop || step;
    out[c] = strip || m.rim[c] || edge ? 1 : 0;
  }
  return out;
}
