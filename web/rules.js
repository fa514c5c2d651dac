// Ruled and grid paper (step 5): the twin of export/reader/rules.py: the rules' pixels, and the darkness
// ink must exceed beside them.

import { _odd, _open1, _run, f32, percentile32 } from "./filters.js";
import { ImageError } from "./image.js";

// rules.py _lines: (H, W) mask of ruled or grid line pixels: thin across, long along (+-tilt).
function _lines(d, p) {
  const { h, w } = d, s = Math.min(h, w);
  const thin = Math.max(4, Math.floor(p.line_thin * s + 0.5)); // px across
  const length = Math.max(40, Math.floor(p.line_length * s + 0.5)); // px along
  const tol = _odd(length * Math.tan(p.line_tilt * (Math.PI / 180)), 3); // a tilted rule drifts this much
  const noise = f32(p.line_noise), cpx = new Float32Array(h * w);
  for (let i = 0; i < cpx.length; i++) cpx[i] = d.px[i] > noise ? 1 : 0;
  const c = { h, w, px: cpx }, out = new Uint8Array(h * w);
  for (const along of [1, 0]) { // horizontal rules run along axis 1 (rows), vertical ones along axis 0
    const across = 1 - along;
    if ((along === 0 ? h : w) < length) continue; // too small to hold a rule
    const o = _open1(c, thin + 1, across), tpx = new Float32Array(h * w);
    for (let i = 0; i < tpx.length; i++) tpx[i] = cpx[i] * (1 - o.px[i]); // in runs across no longer than `thin`
    const t = { h, w, px: tpx };
    const band = _run(_run(t, tol, across, true), p.line_gap, along, true);
    const long = _open1(band, length, along);
    for (let i = 0; i < out.length; i++) if (tpx[i] * long.px[i] > 0) out[i] = 1;
  }
  return { h, w, px: out };
}

// rules.py _threshold: the darkness ink must exceed on a darkness image with this peak: ink_rel x peak;
// on ruled or grid paper, clearly darker than the rules too. ImageError when the page holds only rules.
export function _threshold(d, peak, p) {
  const { h, w } = d, n = h * w;
  const lines = _lines(d, p);
  let t = p.ink_rel * peak, count = 0;
  for (let i = 0; i < n; i++) count += lines.px[i];
  if (count >= p.line_min * (h + w)) {
    const onLines = new Float32Array(count);
    for (let i = 0, j = 0; i < n; i++) if (lines.px[i]) onLines[j++] = d.px[i];
    const level = percentile32(onLines.sort(), p.line_percentile);
    if (peak < p.line_contrast * level) throw new ImageError("no digit found (blank image; only ruled lines)");
    t = Math.min(Math.max(t, p.line_margin * level), p.line_max_rel * peak);
  }
  return t;
}
