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

// preprocess.py _polar: steps 1-2 -> the grey working image and the polarities to try, in order:
// {readings: [inverted], gray(inverted) -> dark ink on light paper, frame: [f, [H, W] of the input]}.
// Each reading is tried in turn until one finds a digit (_steps below, segment.js's read_number).
export function _polar(image, p) {
  return _polar_grey(_grey(image, p.luma), p);
}

// preprocess.py _polar_grey: _polar on the input already grey, {h, w, px} (segment.js reads a crop of it
// again).
export function _polar_grey(a, p) {
  // 1. Grey working image, longer side work..2*work-1 px (or smaller if the input is), each f x f block
  //    its darkest pixel: thin dark strokes survive the reduction.
  const f = _factor([a.h, a.w], Math.trunc(p.work)), g = _shrink(a, f, false);
  // 2. Polarity: dark ink on light paper (when unsure, the second reading if the first finds no digit).
  //    Light ink is reduced by its lightest pixel instead, then inverted.
  const readings = _polarities(g, _odd(p.polarity_window * Math.min(g.h, g.w), 3), p);
  const gray = (inverted) => {
    if (!inverted) return g;
    const light = _shrink(a, f, true); // light ink: each block's lightest pixel, inverted
    return { ...light, px: light.px.map((v) => 1 - v) };
  };
  return { readings, gray, frame: [f, [a.h, a.w]] };
}

// preprocess.py _steps: the whole preprocessing, in order -> Float32Array(canvas * canvas).
function _steps(image, p) {
  const { readings, gray, frame } = _polar(image, p);
  for (let i = 0; i < readings.length; i++) {
    try {
      return _read(gray(readings[i]), readings[i], p, readings.length > 1, frame);
    } catch (e) {
      if (!(e instanceof ImageError) || i === readings.length - 1) throw e;
    }
  }
}

// preprocess.py _ink: steps 3-5 on a grey image of dark ink on light paper -> {d, d3: darkness with the
// desk cleared, t: the darkness ink exceeds, paper: the paper level, desk: paper when the frame shows
// desk (else null, for the marks' desk test), info: {inverted, factor, shape}}.
export function _ink(g, inverted, p, frame = [1, null]) {
  const { h, w } = g, n = h * w;
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
  return { d, d3, t, paper, desk: deskFrame ? paper : null, info: { inverted, factor: frame[0], shape: frame[1] } };
}

// preprocess.py _one: step 6 for one digit: the mask of the best-scoring mark darker than t (specks and
// desk edges dropped) and its parts, or an ImageError (`marks`: _plausible's answer).
export function _one(ink, p, unsure, marks = null) {
  const { paper } = ink, { h, w } = paper, mask = _digit(ink.d3, ink.t, ink.desk, p, marks);
  // Light ink lies on the dark ground the frame shows: a "light digit" on a ground far lighter than the
  // frame's (a paper level far below it) is a lit part of a sheet broken up by shadow.
  if (unsure && ink.info.inverted) {
    let level = 0, area = 0;
    for (let i = 0; i < h * w; i++) if (mask.px[i]) { level += paper.px[i]; area++; } // the paper level under the digit
    if (level / area < p.unsure_ground * median(_border(paper))) throw new ImageError("no digit found (blank image)");
  }
  return mask;
}

// preprocess.py _cut: the ink of a mask {h, w, px} cut to its box [y0, x0, y1, x1] grown by e px each way
// (within the image) -> {x: its darkness over the threshold up to the mask's own peak (value 1), 0 outside
// the mask, {h, w, px} float32; sub: the mask cut alike; cy0, cx0: the cut's corner in working px}.
export function _cut(ink, mask, [y0, x0, y1, x1], e) {
  const { d, d3, t } = ink, { h, w } = d;
  const cy0 = Math.max(y0 - e, 0), cx0 = Math.max(x0 - e, 0), cy1 = Math.min(y1 + e, h), cx1 = Math.min(x1 + e, w);
  const ch = cy1 - cy0, cw = cx1 - cx0, sub = new Uint8Array(ch * cw);
  let peak = -Infinity; // the mask's own peak: its value 1
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const i = (y + cy0) * w + x + cx0;
      if (mask.px[i]) { sub[y * cw + x] = 1; peak = Math.max(peak, d3.px[i]); }
    }
  }
  const tt = f32(t), scale = f32(Math.max(peak - t, 1e-6)), x = new Float32Array(ch * cw); // (h, w) of the cut
  for (let y = 0; y < ch; y++) {
    for (let c = 0; c < cw; c++) {
      const k = y * cw + c;
      x[k] = sub[k] ? Math.min(Math.max(f32(f32(d.px[(y + cy0) * w + c + cx0] - tt) / scale), 0), 1) : 0;
    }
  }
  return { x: { h: ch, w: cw, px: x }, sub: { h: ch, w: cw, px: sub }, cy0, cx0 };
}

// preprocess.py _input: step 7 for the digit in `mask` -> [Float32Array(canvas * canvas), its box
// [y0, x0, y1, x1] in working pixels (ends exclusive)].
// (mask.region, when given: [y0, x0, y1, x1] holding all its set pixels, where the search for its box stays.)
export function _input(ink, mask, p) {
  const fit = Math.trunc(p.fit), canvas = Math.trunc(p.canvas), { h, w } = ink.d;
  const [ry0, rx0, ry1, rx1] = mask.region ?? [0, 0, h, w];
  let y0 = h, y1 = 0, x0 = w, x1 = 0;
  for (let y = ry0; y < ry1; y++) {
    for (let x = rx0; x < rx1; x++) {
      if (!mask.px[y * w + x]) continue;
      y0 = Math.min(y0, y); y1 = Math.max(y1, y + 1); x0 = Math.min(x0, x); x1 = Math.max(x1, x + 1);
    }
  }
  // Work on the box grown by its longer side + 2 px: _stroke's running max and min reach less far than
  // that, and outside the mask x is 0, so the crop changes no value.
  const { x, sub, cy0, cx0 } = _cut(ink, mask, [y0, x0, y1, x1], Math.max(y1 - y0, x1 - x0) + 2);
  // 7. MNIST's own steps: strokes near MNIST's width, longer side to `fit` px, values to peak 1,
  //    centre of mass at the canvas centre.
  const box = [y0 - cy0, x0 - cx0, y1 - cy0, x1 - cx0];
  return [_mnist(_stroke(x, sub, box, fit, p), fit, canvas), [y0, x0, y1, x1]];
}

// preprocess.py _read: steps 3-7 on a grey image of dark ink on light paper (`unsure`: one of two polarities tried).
function _read(g, inverted, p, unsure = false, frame = [1, null]) {
  const ink = _ink(g, inverted, p, frame);
  return _input(ink, _one(ink, p, unsure), p)[0];
}

// preprocess.py preprocess: any image of one digit -> Float32Array(canvas * canvas) in [0, 1], light
// digit on dark, as in MNIST. `params`: preprocessingParams(the model's metadata entry).
export function preprocess(image, params = DEFAULTS.preprocessing) {
  return _steps(image, params);
}
