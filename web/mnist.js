// MNIST's own steps (step 7): the twin of export/reader/mnist.py: the cropped digit's longer side to `fit`
// px, centre of mass at the canvas centre.

import { _weights, f32, minMax } from "./filters.js";
import { ImageError } from "./image.js";

// mnist.py _mnist: the digit cropped to its box, {h, w, px} light on dark -> Float32Array(canvas * canvas)
// in [0, 1]: longer side to `fit` px, values to peak 1, centre of mass at the canvas centre.
export function _mnist(crop, fit, canvas) {
  const { h: bh, w: bw, px: x } = crop;
  const fh = Math.max(1, Math.floor((bh * fit) / Math.max(bh, bw) + 0.5));
  const fw = Math.max(1, Math.floor((bw * fit) / Math.max(bh, bw) + 0.5));
  const wy = _weights(bh, fh), wx = _weights(bw, fw), tmp = new Float32Array(fh * bw), r = new Float32Array(fh * fw);
  for (let o = 0; o < fh; o++) { // _weights(bh, fh) @ x: float32 matmul (summed in float64, rounded once)
    for (let c = 0; c < bw; c++) {
      let s = 0;
      for (let i = 0; i < bh; i++) s += wy[o * bh + i] * x[i * bw + c];
      tmp[o * bw + c] = s;
    }
  }
  for (let o = 0; o < fh; o++) { // ... @ _weights(bw, fw).T
    for (let q = 0; q < fw; q++) {
      let s = 0;
      for (let c = 0; c < bw; c++) s += tmp[o * bw + c] * wx[q * bw + c];
      r[o * fw + q] = s;
    }
  }
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
