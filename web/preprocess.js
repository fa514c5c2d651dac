// Any image of one digit -> the 28x28 float input the model takes: the twin of export/reader/preprocess.py,
// the steps in order.
//
// Each module of web/ mirrors the Python module of the same name in export/reader/, and each function
// the Python function of the same name, in the same order, step by step, so that a change there is
// easy to carry over here. Arrays are row-major; a gray image is {h, w, px: Float32Array(h * w)} (the
// reader's float32 (H, W) arrays), a mask {h, w, px: Uint8Array}. Where numpy computes in float32, so
// does this code (Float32Array stores, Math.fround; see filters.js). Every number comes from `params`,
// the model's metadata `preprocessing` entry over DEFAULTS (params.js).

import { _border, _box3, _odd, f32, median, minMax } from "./filters.js";
import { ImageError, _factor, _grey, _shrink } from "./image.js";
import { _digit, _marks, _paint } from "./marks.js";
import { _mnist, _stroke } from "./mnist.js";
import { _darkness, _desk, _desk_frame, _polarities } from "./paper.js";
import { DEFAULTS } from "./params.js";
import { _threshold } from "./rules.js";

// preprocess.py _steps: the whole preprocessing, in order -> Float32Array(canvas * canvas). Like the
// Python's `info`, `info` gets what the steps found: `box`, the digit's [y0, x0, y1, x1] in working-image
// pixels, and `factor`, the working image's reduction (times `factor`: the input's pixels).
function _steps(image, p, info = {}) {
  // 1. Grey working image, longer side work..2*work-1 px (or smaller if the input is), each f x f block
  //    its darkest pixel: thin dark strokes survive the reduction.
  const a = _grey(image, p.luma), f = _factor([a.h, a.w], Math.trunc(p.work)), g = _shrink(a, f, false);
  info.factor = f;
  // 2. Polarity: dark ink on light paper (when unsure, the second reading if the first finds no digit).
  //    Light ink is reduced by its lightest pixel instead, then inverted.
  const readings = _polarities(g, _odd(p.polarity_window * Math.min(g.h, g.w), 3), p);
  for (let i = 0; i < readings.length; i++) {
    try {
      const light = readings[i] && _shrink(a, f, true); // light ink: each block's lightest pixel, inverted
      return _read(light ? { ...light, px: light.px.map((v) => 1 - v) } : g, readings[i], p, readings.length > 1, info);
    } catch (e) {
      if (!(e instanceof ImageError) || i === readings.length - 1) throw e;
    }
  }
}

// preprocess.py _read: steps 3-7 on a grey image of dark ink on light paper (`unsure`: one of two polarities tried).
function _read(g, inverted, p, unsure = false, info = {}) {
  const fit = Math.trunc(p.fit), canvas = Math.trunc(p.canvas), { h, w } = g, n = h * w;
  // 3. Paper level, locally (a grey closing, JPEG ringing beside a dark desk opened away first), and
  // darkness relative to it.
  const { paper, d } = _darkness(g, p), dpx = d.px, d3 = _box3(d);
  // 4. The sheet: drop the desk the closing filled in beside a sheet's edge, and desk grain just off it.
  const deskFrame = _desk_frame(paper, p);
  const minInk = f32(p.min_ink), seed = new Uint8Array(n);
  for (let i = 0; i < n; i++) seed[i] = d3.px[i] > minInk ? 1 : 0;
  const m = _marks({ h, w, px: seed }, d3, deskFrame ? paper : null, p);
  const desk = _paint(m, _desk(m, p), h, w);
  for (let i = 0; i < n; i++) if (desk.px[i]) { dpx[i] = 0; d3.px[i] = 0; }
  const peak = minMax(d3.px)[1];
  if (peak < p.min_ink) throw new ImageError("no digit found (blank image)");
  // 5. Ruled and grid lines: when present, ink must be clearly darker than they are.
  const t = _threshold(d3, peak, p);
  // 6. The digit: the best-scoring mark darker than t and its parts.
  const mask = _digit(d3, t, deskFrame ? paper : null, p);
  let y0 = h, y1 = 0, x0 = w, x1 = 0, ink = -Infinity, level = 0, area = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!mask.px[y * w + x]) continue;
      y0 = Math.min(y0, y); y1 = Math.max(y1, y + 1); x0 = Math.min(x0, x); x1 = Math.max(x1, x + 1);
      ink = Math.max(ink, d3.px[y * w + x]); // the digit's own peak: its value 1
      level += paper.px[y * w + x]; area++; // the paper level under the digit (for the test below)
    }
  }
  // Light ink lies on the dark ground the frame shows: a "light digit" on a ground far lighter than the
  // frame's (a paper level far below it) is a lit part of a sheet broken up by shadow.
  if (unsure && inverted && level / area < p.unsure_ground * median(_border(paper))) {
    throw new ImageError("no digit found (blank image)");
  }
  info.box = [y0, x0, y1, x1];
  const tt = f32(t), scale = f32(Math.max(ink - t, 1e-6)), x = new Float32Array(n); // (H, W)
  for (let i = 0; i < n; i++) x[i] = mask.px[i] ? Math.min(Math.max(f32(f32(dpx[i] - tt) / scale), 0), 1) : 0;
  // 7. MNIST's own steps: strokes near MNIST's width, longer side to `fit` px, values to peak 1,
  //    centre of mass at the canvas centre.
  return _mnist(_stroke({ h, w, px: x }, mask, [y0, x0, y1, x1], fit, p), fit, canvas);
}

// preprocess.py preprocess: any image of one digit -> Float32Array(canvas * canvas) in [0, 1], light
// digit on dark, as in MNIST. `params`: preprocessingParams(the model's metadata entry). `info` (optional):
// filled in as _steps says (the camera draws the digit's box from it).
export function preprocess(image, params = DEFAULTS.preprocessing, info = {}) {
  return _steps(image, params, info);
}
