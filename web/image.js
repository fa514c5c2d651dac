// Decoded image -> the grey working image: the twin of export/reader/image.py (to_gray and its helpers).
//
// What the browser does instead of Pillow: decoding (and EXIF rotation) happens in app.js, which
// hands over RGBA ImageData at full size. Both sides work from the full-size image: image.py
// decodes a JPEG at full size too (Pillow's draft mode at full scale: its Y channel, grey, no colour
// conversion), then both reduce it by the same whole factor, each block its darkest (or lightest)
// pixel (_shrink). The browser decodes a JPEG to RGB and takes its luma instead of the file's own Y
// (and its IDCT may round differently), so JPEG inputs agree closely, not exactly. PNG files match
// to ~1e-7. An RGBA file without a transparent pixel takes image.py's convert("L") path here (the
// browser does not say whether the file had an alpha channel) and its RGBA path in image.py: close,
// not equal.

import { f32, median, minMax, percentile64 } from "./filters.js";
import { DEFAULTS } from "./params.js";

// image.py ImageError: one input cannot be classified; the message is the reason, one line.
export class ImageError extends Error {}

// image.py _composite: flatten gray `y` with transparency onto a ground the ink shows up on.
function _composite(y, alpha) {
  const all = new Float32Array(y.px.length);
  let k = 0;
  for (let i = 0; i < all.length; i++) if (alpha[i] > 0.5) all[k++] = y.px[i];
  const opaque = all.subarray(0, k).sort(), px = new Float32Array(y.px.length);
  if (opaque.length === 0) return { ...y, px: px.fill(1) }; // nothing visible: blank
  const lo = percentile64(opaque, 5), hi = percentile64(opaque, 95);
  let ground;
  if (hi - lo > 0.25) { // the visible part is a digit on its own paper: extend that paper
    ground = median(opaque);
  } else { // the visible part is the ink itself (a black digit on a transparent PNG): contrast it
    let sum = 0;
    for (const v of opaque) sum += v;
    ground = sum / opaque.length < 0.5 ? 1 : 0;
  }
  const g = f32(ground);
  for (let i = 0; i < px.length; i++) px[i] = f32(alpha[i] * y.px[i]) + f32(f32(1 - alpha[i]) * g);
  return { ...y, px };
}

// image.py _grey: RGBA ImageData {width, height, data} -> {h, w, px} at full size, the image as it
// looks (not yet inverted): px Uint8Array (0..255, image.py's convert("L") bytes) or Float32Array in
// [0, 1]. The browser gives 8-bit RGBA for every format; an image with any transparent pixel takes
// image.py's RGBA path (float32 / 255, `rgb @ luma` in float32, composited), any other its
// convert("L") path (Pillow's fixed-point ITU-R 601 luma, rounded to uint8).
export function _grey(image, luma = DEFAULTS.preprocessing.luma) {
  const { width: w, height: h, data } = image, n = w * h;
  if (n === 0) throw new ImageError(`unsupported image shape (${h}, ${w})`);
  let transparent = false;
  for (let i = 3; i < data.length; i += 4) if (data[i] < 255) { transparent = true; break; }
  if (transparent) {
    const px = new Float32Array(n), alpha = new Float32Array(n);
    const [l0, l1, l2] = luma.map(f32);
    for (let i = 0; i < n; i++) {
      const R = f32(data[4 * i] / 255), G = f32(data[4 * i + 1] / 255), B = f32(data[4 * i + 2] / 255);
      px[i] = f32(f32(f32(R * l0) + f32(G * l1)) + f32(B * l2));
      alpha[i] = f32(data[4 * i + 3] / 255);
    }
    const y = { h, w, px };
    return minMax(alpha)[0] < 1 ? _composite(y, alpha) : y;
  }
  const px = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    px[i] = (data[4 * i] * 19595 + data[4 * i + 1] * 38470 + data[4 * i + 2] * 7471 + 0x8000) >>> 16;
  }
  return { h, w, px };
}

// image.py _factor: the whole reduction factor to the working size, shape [h, w]: floor(longer side /
// work), none below 2 x work.
export function _factor(shape, work) {
  return work ? Math.max(1, Math.floor(Math.max(...shape) / work)) : 1;
}

// image.py _shrink: {h, w, px} -> float32 (ceil(h/f), ceil(w/f)) in [0, 1]: per f x f block its
// darkest pixel (isMax false, np.minimum) or its lightest (isMax true, np.maximum); edge blocks take
// the pixels they have. Bytes are reduced first, then / 255 in float32 (a float64 quotient rounded
// once to float32 is numpy's float32 division).
export function _shrink(a, f, isMax = false) {
  const { h, w, px } = a, oh = Math.ceil(h / f), ow = Math.ceil(w / f), out = new Float32Array(oh * ow);
  const scale = px instanceof Float32Array ? 1 : 255;
  if (f <= 1) {
    for (let i = 0; i < out.length; i++) out[i] = px[i] / scale;
    return { h, w, px: out };
  }
  for (let oy = 0; oy < oh; oy++) {
    const y0 = oy * f, y1 = Math.min(y0 + f, h);
    for (let ox = 0; ox < ow; ox++) {
      const x0 = ox * f, x1 = Math.min(x0 + f, w);
      let v = px[y0 * w + x0];
      for (let y = y0; y < y1; y++) {
        for (let x = x0, i = y * w + x0; x < x1; x++, i++) { const u = px[i]; if (isMax ? u > v : u < v) v = u; }
      }
      out[oy * ow + ox] = v / scale;
    }
  }
  return { h: oh, w: ow, px: out };
}

// image.py to_gray: RGBA ImageData -> gray {h, w, px} in [0, 1], as it looks (not yet inverted),
// reduced by floor(longer side / work) when the longer side is >= 2 x work, each block its darkest
// pixel (darkest, for dark ink) or its lightest (for light ink).
export function to_gray(image, work = DEFAULTS.preprocessing.work, luma = DEFAULTS.preprocessing.luma, darkest = true) {
  const a = _grey(image, luma);
  return _shrink(a, _factor([a.h, a.w], work), !darkest);
}
