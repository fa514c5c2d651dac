// Decoded image -> the grey working image: the twin of export/reader/image.py (to_gray and its helpers).
//
// What the browser does instead of Pillow: decoding (and EXIF rotation) happens in app.js, which
// hands over RGBA ImageData. A JPEG, which image.py decodes at 1/2-1/8 scale in the DCT domain
// (Pillow's draft mode, its Y channel only), is decoded by the browser at full size, then box-reduced
// by the same 1/2-1/8 and reduced as any other image (to_gray): the same working image size, but
// pixels that differ a little, so JPEG inputs agree closely, not exactly. PNG files match to ~1e-7.
// An RGBA file without a transparent pixel takes image.py's convert("L") path here (the browser
// does not say whether the file had an alpha channel) and its RGBA path in image.py: close, not equal.

import { f32, median, minMax, percentile64 } from "./filters.js";
import { DEFAULTS } from "./params.js";

// image.py ImageError: one input cannot be classified; the message is the reason, one line.
export class ImageError extends Error {}

// PIL Image.reduce(factor): box average of factor x factor blocks (partial blocks at the right
// and bottom edges average what they hold), rounded as Pillow's Reduce.c does (fixed point:
// (sum + n/2) * floor(2^24 / n) >> 24). `src` is uint8 with `c` channels; RGBA (c = 4) is reduced
// as Pillow does it, premultiplied by alpha ("RGBa") and converted back.
function reduce(src, w, h, c, factor) {
  if (c === 4) { // Image.convert("RGBa"): MULDIV255 per colour channel
    const pm = new Uint8ClampedArray(src.length);
    for (let i = 0; i < src.length; i += 4) {
      for (let k = 0; k < 3; k++) { const t = src[i + k] * src[i + 3] + 128; pm[i + k] = (t + (t >> 8)) >> 8; }
      pm[i + 3] = src[i + 3];
    }
    src = pm;
  }
  const ow = Math.ceil(w / factor), oh = Math.ceil(h / factor);
  const out = new Uint8ClampedArray(ow * oh * c);
  for (let oy = 0; oy < oh; oy++) {
    const y0 = oy * factor, y1 = Math.min(y0 + factor, h);
    for (let ox = 0; ox < ow; ox++) {
      const x0 = ox * factor, x1 = Math.min(x0 + factor, w), n = (y1 - y0) * (x1 - x0), mul = Math.floor(2 ** 24 / n);
      for (let k = 0; k < c; k++) {
        let sum = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += src[(y * w + x) * c + k];
        out[(oy * ow + ox) * c + k] = Math.floor(((sum + (n >> 1)) * mul) / 2 ** 24);
      }
    }
  }
  if (c === 4) { // Image.convert("RGBA") from "RGBa": divide by alpha, unless it is 0 or 255
    for (let i = 0; i < out.length; i += 4) {
      const a = out[i + 3];
      if (a !== 0 && a !== 255) for (let k = 0; k < 3; k++) out[i + k] = Math.min(255, Math.floor((255 * out[i + k]) / a));
    }
  }
  return { data: out, w: ow, h: oh };
}

// image.py _composite: flatten gray `y` with transparency onto a ground the ink shows up on.
function _composite(y, alpha) {
  const opaque = Float32Array.from(y.px.filter((_, i) => alpha[i] > 0.5)).sort();
  const px = new Float32Array(y.px.length);
  if (opaque.length === 0) return { ...y, px: px.fill(1) }; // nothing visible: blank
  const lo = percentile64(opaque, 5), hi = percentile64(opaque, 95);
  let ground;
  if (hi - lo > 0.25) { // the visible part is a digit on its own paper: extend that paper
    ground = median(opaque);
  } else { // the visible part is the ink itself (a black digit on a transparent PNG): contrast it
    ground = opaque.reduce((a, b) => a + b, 0) / opaque.length < 0.5 ? 1 : 0;
  }
  const g = f32(ground);
  for (let i = 0; i < px.length; i++) px[i] = f32(alpha[i] * y.px[i]) + f32(f32(1 - alpha[i]) * g);
  return { ...y, px };
}

// image.py to_gray: RGBA ImageData {width, height, data} -> gray in [0, 1], as it looks (not
// yet inverted), box-reduced by floor(longer side / work) when the longer side is >= 2 x work.
// The browser gives 8-bit RGBA for every format; an image with any transparent pixel takes
// image.py's RGBA path (luma from `luma`), any other its convert("L") path (Pillow's luma).
export function to_gray(image, work = DEFAULTS.preprocessing.work, luma = DEFAULTS.preprocessing.luma, jpeg = false) {
  let { width: w, height: h, data } = image;
  if (w * h === 0) throw new ImageError(`unsupported image shape (${h}, ${w})`);
  if (jpeg && work) {
    // image.py load_image: img.draft("L", ...) decodes a JPEG at 1/s scale (s = 8, 4, 2 or 1, as
    // Pillow's JpegImageFile.draft picks it) in the DCT domain. The browser cannot: it decoded at
    // full size, so reduce by the same s here (a box mean, close to but not exactly the scaled IDCT;
    // and Pillow's luma of the decoded RGB, within 1/255 of the JPEG's own Y): same working image size.
    const rw = Math.ceil((w * work) / Math.max(w, h)), rh = Math.ceil((h * work) / Math.max(w, h));
    const scale = Math.min(Math.floor(w / rw), Math.floor(h / rh)), s = [8, 4, 2, 1].find((v) => scale >= v);
    if (s > 1) ({ data, w, h } = reduce(data, w, h, 4, s));
  }
  let transparent = false;
  for (let i = 3; i < data.length; i += 4) if (data[i] < 255) { transparent = true; break; }
  const factor = work && Math.max(w, h) >= 2 * work ? Math.floor(Math.max(w, h) / work) : 1;
  if (transparent) {
    // img.convert("RGBA"), img.reduce(...), then float32 / 255 and `rgb @ luma` in float32.
    const r = factor > 1 ? reduce(data, w, h, 4, factor) : { data, w, h };
    const n = r.w * r.h, px = new Float32Array(n), alpha = new Float32Array(n);
    const [l0, l1, l2] = luma.map(f32);
    for (let i = 0; i < n; i++) {
      const [R, G, B] = [0, 1, 2].map((k) => f32(r.data[4 * i + k] / 255));
      px[i] = f32(f32(f32(R * l0) + f32(G * l1)) + f32(B * l2));
      alpha[i] = f32(r.data[4 * i + 3] / 255);
    }
    const y = { h: r.h, w: r.w, px };
    return minMax(alpha)[0] < 1 ? _composite(y, alpha) : y;
  }
  // img.convert("L"): Pillow's fixed-point ITU-R 601 luma, rounded to uint8; then reduce, / 255.
  let gray = new Uint8ClampedArray(w * h);
  for (let i = 0; i < w * h; i++) {
    gray[i] = (data[4 * i] * 19595 + data[4 * i + 1] * 38470 + data[4 * i + 2] * 7471 + 0x8000) >>> 16;
  }
  let gw = w, gh = h;
  if (factor > 1) ({ data: gray, w: gw, h: gh } = reduce(gray, w, h, 1, factor));
  const px = new Float32Array(gw * gh);
  for (let i = 0; i < px.length; i++) px[i] = gray[i] / 255;
  return { h: gh, w: gw, px };
}
