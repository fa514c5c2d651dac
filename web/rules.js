// Ruled and grid paper (step 5): the twin of export/reader/rules.py: the rules' darkness, and the darkness
// ink must exceed beside them.

import { _odd, _open1, _run, f32, median, percentile32 } from "./filters.js";
import { ImageError } from "./image.js";
import { _marks } from "./marks.js";

// numpy's a.T of an {h, w, px} array (a copy).
function transpose(a) {
  const { h, w, px } = a, out = new px.constructor(px.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[x * h + y] = px[y * w + x];
  return { h: w, w: h, px: out };
}

// rules.py _rules: the darkness of the ruled or grid lines of a darkness image, or null when it shows
// none. Candidates: pixels thin across, long along a row or column (+-tilt). Their segments (8-connected,
// at least line_length long) of one direction count only when they lie on at least line_family lines
// (positions across more than `thin` apart) that span line_span of the frame. Their darkness: per
// segment the line_percentile of its pixels, then the median over the segments.
function _rules(d, p) {
  const { h, w } = d, s = Math.min(h, w);
  const thin = Math.max(4, Math.floor(p.line_thin * s + 0.5)); // px across
  const length = Math.max(40, Math.floor(p.line_length * s + 0.5)); // px along
  const tol = _odd(length * Math.tan(p.line_tilt * (Math.PI / 180)), 3); // a tilted rule drifts this much
  const noise = f32(p.line_noise), cpx = new Float32Array(h * w);
  for (let i = 0; i < cpx.length; i++) cpx[i] = d.px[i] > noise ? 1 : 0;
  const c = { h, w, px: cpx }, levels = [];
  let count = 0;
  for (const along of [1, 0]) { // horizontal rules run along axis 1 (rows), vertical ones along axis 0
    const across = 1 - along, size = along === 0 ? h : w;
    if (size < length) continue; // too small to hold a rule
    const o = _open1(c, thin + 1, across), tpx = new Float32Array(h * w);
    for (let i = 0; i < tpx.length; i++) tpx[i] = cpx[i] * (1 - o.px[i]); // in runs across no longer than `thin`
    const t = { h, w, px: tpx };
    const band = _run(_run(t, tol, across, true), p.line_gap, along, true);
    const long = _open1(band, length, along);
    let cand = { h, w, px: new Float32Array(h * w) }; // 0/1: rule pixels, broken where lines cross
    for (let i = 0; i < tpx.length; i++) cand.px[i] = tpx[i] * long.px[i];
    const bridged = _run(cand, p.line_gap, along, true); // gaps of up to line_gap - 1 px bridged
    let joined = { h, w, px: new Uint8Array(h * w) }, dd = d;
    for (let i = 0; i < tpx.length; i++) joined.px[i] = bridged.px[i] > 0 ? 1 : 0;
    if (along === 0) { // work on rows: transposed, a vertical rule runs along a row
      cand = transpose(cand); joined = transpose(joined); dd = transpose(d);
    }
    const m = _marks(joined, dd, null, p);
    const seg = [];
    for (let k = 0; k < m.n; k++) if (m.x1[k] - m.x0[k] >= length) seg.push(k); // segments long enough (px along)
    if (seg.length === 0) continue;
    // Segments on one line (positions across within `thin` of the previous) make a line; a rule broken
    // where strokes cross it keeps its pieces' sum. Lines spanning line_span of the frame are rules.
    seg.sort((a, b) => m.cy[a] - m.cy[b]); // stable, as numpy's kind="stable"
    const line = [0];
    for (let k = 1; k < seg.length; k++) line.push(line[k - 1] + (m.cy[seg[k]] - m.cy[seg[k - 1]] > thin ? 1 : 0));
    const span = new Float64Array(line[line.length - 1] + 1); // px along, per line
    for (let k = 0; k < seg.length; k++) span[line[k]] += m.x1[seg[k]] - m.x0[seg[k]];
    const rule = Array.from(span, (v) => v >= p.line_span * size);
    if (rule.filter(Boolean).length < p.line_family) continue;
    // The rule pixels themselves (not the bridged gaps) of each rule segment: their darkness.
    const label = new Int32Array(dd.h * dd.w).fill(-1);
    for (let i = 0; i < m.rows.length; i++) label.fill(m.comp[i], m.rows[i] * dd.w + m.starts[i], m.rows[i] * dd.w + m.ends[i]);
    const dark = new Map();
    for (let k = 0; k < seg.length; k++) if (rule[line[k]]) dark.set(seg[k], []);
    for (let i = 0; i < label.length; i++) if (cand.px[i] > 0 && dark.has(label[i])) dark.get(label[i]).push(dd.px[i]);
    for (const values of dark.values()) {
      levels.push(percentile32(Float32Array.from(values).sort(), p.line_percentile));
      count += values.length;
    }
  }
  if (count < p.line_min * (h + w) || levels.length === 0) return null;
  levels.sort((a, b) => a - b); // np.median of a list of floats: float64
  const mid = levels.length >> 1;
  return levels.length % 2 ? levels[mid] : (levels[mid - 1] + levels[mid]) / 2;
}

// rules.py _threshold: the darkness ink must exceed on a darkness image with this peak: ink_rel x peak,
// and clear of the noise (noise_k robust sigmas above the median); on ruled or grid paper, clearly darker
// than the rules too. ImageError when the page holds only rules.
export function _threshold(d, peak, p) {
  const level = _rules(d, p);
  let t = p.ink_rel * peak;
  if (Math.min(d.h, d.w) >= p.polarity_min_side) { // a photo, not a crop or an icon (see rules.py)
    const mid = median(d.px), dev = new Float32Array(d.px.length);
    for (let i = 0; i < dev.length; i++) dev[i] = Math.abs(f32(d.px[i] - mid)); // np.abs(d - mid), float32
    t = Math.max(t, mid + p.noise_k * 1.4826 * median(dev));
  }
  if (level !== null) {
    if (peak < p.line_contrast * level) throw new ImageError("no digit found (blank image; only ruled lines)");
    t = Math.min(Math.max(t, p.line_margin * level), p.line_max_rel * peak);
  }
  return t;
}
