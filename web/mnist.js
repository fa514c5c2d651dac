// MNIST's own steps (step 7): the twin of export/reader/mnist.py: strokes at least MNIST's width, the
// cropped digit's longer side to `fit` px, centre of mass at the canvas centre.

import { _max2, _min2, _resample, f32, minMax } from "./filters.js";
import { ImageError } from "./image.js";

// mnist.py _mnist: the digit cropped to its box, {h, w, px} light on dark -> Float32Array(canvas * canvas)
// in [0, 1]: longer side to `fit` px, values to peak 1, centre of mass at the canvas centre.
export function _mnist(crop, fit, canvas) {
  const { h: bh, w: bw } = crop;
  const fh = Math.max(1, Math.floor((bh * fit) / Math.max(bh, bw) + 0.5));
  const fw = Math.max(1, Math.floor((bw * fit) / Math.max(bh, bw) + 0.5));
  const r = _resample(crop, fh, fw); // _weights(bh, fh) @ crop @ _weights(bw, fw).T
  const top = minMax(r)[1];
  if (top <= 0) throw new ImageError("no digit found (blank image)");
  for (let i = 0; i < r.length; i++) r[i] = f32(r[i] / top);
  let mass = 0, my = 0, mx = 0;
  const rowSum = new Float64Array(fh), colSum = new Float64Array(fw);
  for (let y = 0; y < fh; y++) for (let c = 0; c < fw; c++) { const v = r[y * fw + c]; mass += v; rowSum[y] += v; colSum[c] += v; }
  mass = f32(mass);
  for (let y = 0; y < fh; y++) my += f32(rowSum[y]) * y;
  for (let c = 0; c < fw; c++) mx += f32(colSum[c]) * c;
  const oy = Math.floor(canvas / 2 - my / mass + 0.5), ox = Math.floor(canvas / 2 - mx / mass + 0.5); // MNIST's mean is (14, 14)
  const out = new Float32Array(canvas * canvas);
  for (let y = Math.max(oy, 0); y < Math.min(oy + fh, canvas); y++) { // clip the paste to the canvas
    for (let c = Math.max(ox, 0); c < Math.min(ox + fw, canvas); c++) out[y * canvas + c] = r[(y - oy) * fw + (c - ox)];
  }
  return out;
}

// mnist.py _stroke_width: mean stroke width in px of a mask {h, w, px}: 2 x area / perimeter, the
// perimeter counted along rows and columns (mask edges against unset pixels or the frame) and scaled by
// pi/4, the mean of |cos| + |sin| over all directions.
export function _stroke_width(mask) {
  const { h, w, px } = mask;
  let area = 0, edges = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!px[i]) continue;
      area++;
      edges += (y === 0 || !px[i - w]) + (y === h - 1 || !px[i + w]) + (x === 0 || !px[i - 1]) + (x === w - 1 || !px[i + 1]);
    }
  }
  return (2 * area) / Math.max((edges * Math.PI) / 4, 1);
}

// mnist.py _stroke: the digit {h, w, px} (H, W) and its mask, cropped to its box [y0, x0, y1, x1] ->
// {h, w, px} float32, its strokes first brought towards MNIST's width at the scale that brings the box's
// longer side to `fit` px: thickened (a running max over a square) to `stroke` px when thinner; thinned
// (a running min) by `thin` of their excess when wider than stroke_max x that, where the digit is at least
// 2 x fit px. The box grows by the px added, within the image.
export function _stroke(x, mask, box, fit, p) {
  const { h, w } = x;
  let [y0, x0, y1, x1] = box;
  const bh = y1 - y0, bw = x1 - x0, crop = new Uint8Array(bh * bw), side = Math.max(bh, bw);
  for (let y = 0; y < bh; y++) for (let c = 0; c < bw; c++) crop[y * bw + c] = mask.px[(y + y0) * w + c + x0];
  const width = _stroke_width({ h: bh, w: bw, px: crop }); // px
  const grow = Math.floor((p.stroke * side) / fit - width + 0.5); // px to add
  if (width > (p.stroke_max * p.stroke * side) / fit && side >= 2 * fit) x = _min2(x, Math.trunc(p.thin * -grow) + 1);
  if (grow > 0) {
    x = _max2(x, grow + 1);
    y0 = Math.max(y0 - (grow >> 1), 0); x0 = Math.max(x0 - (grow >> 1), 0);
    y1 = Math.min(y1 + grow - (grow >> 1), h); x1 = Math.min(x1 + grow - (grow >> 1), w);
  }
  const oh = y1 - y0, ow = x1 - x0, out = new Float32Array(oh * ow);
  for (let y = 0; y < oh; y++) out.set(x.px.subarray((y + y0) * w + x0, (y + y0) * w + x1), y * ow);
  return { h: oh, w: ow, px: out };
}
