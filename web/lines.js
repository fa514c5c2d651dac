// A number's lines read whole by the line model (mnist.lines.onnx): the twin of export/reader/lines.py.
// Each line's ink (inside its digits' boxes, over the threshold, up to the line's own peak), its strokes at
// MNIST's width where the line is ink_height px tall, levelled along the slope of its digits' centres,
// cropped to its ink with `pad` px per ink_height px around, scaled to `height` px tall; read by the line
// model and decoded greedily (the likeliest class per column, repeats merged, blanks dropped). Each digit's
// ten probabilities are its likeliest column's, over the digits. As many digits as segment.js found: its
// boxes and 28x28s, and both models' probabilities multiplied, renormalised. Another count: segment.js's
// digits where the line model finds them within a factor of e^keep as likely as its own reading (CTC's sum
// over alignments); else the line's ink cut halfway between the digits' columns. A line read as no digit
// keeps segment.js's reading; a single digit reads as itself.
//
// model: {run, line}: run is async, an input {h: height, w: W, px} -> Float32Array (classes x W / stride),
// row-major; line: the line model's metadata `line` (LINE's keys).

import { _max2, _min2, _resample, argmax, f32 } from "./filters.js";
import { ImageError } from "./image.js";
import { _stroke_width } from "./mnist.js";
import { _cut, _input } from "./preprocess.js";

export const LINE = { height: 32, stride: 4, blank: 10, ink: 0.08, pad: 2, ink_height: 24, keep: 4.0 };

// lines.py _line_mask: the ink (d3 > t) inside a line's digits' boxes [y0, x0, y1, x1] -> a mask
// {h, w, px} with its region (the box around its pixels), or null when it has none.
function _line_mask(ink, boxes) {
  const { h, w } = ink.d, px = new Uint8Array(h * w), t = ink.t, d3 = ink.d3.px;
  let y0 = h, x0 = w, y1 = 0, x1 = 0;
  for (const [by0, bx0, by1, bx1] of boxes) {
    for (let y = by0; y < by1; y++) {
      for (let x = bx0; x < bx1; x++) {
        const i = y * w + x;
        if (!px[i] && d3[i] > t) {
          px[i] = 1;
          y0 = Math.min(y0, y); y1 = Math.max(y1, y + 1); x0 = Math.min(x0, x); x1 = Math.max(x1, x + 1);
        }
      }
    }
  }
  return y1 > y0 ? { h, w, px, region: [y0, x0, y1, x1] } : null;
}

// lines.py _ink_of: the line's ink in `mask` -> {x: {h, w, px} float32 in [0, 1], its strokes at MNIST's
// width, cy0, cx0: the corner of x in working px}.
function _ink_of(ink, mask, p, line) {
  const [y0, , y1] = mask.region, tall = y1 - y0;
  // Grown by tall + 2 px: farther than _max2 and _min2 reach below.
  const { x: cut, sub, cy0, cx0 } = _cut(ink, mask, mask.region, tall + 2);
  let x = cut;
  // Strokes as _stroke brings a digit's, at the scale where the line's ink is ink_height px tall.
  const s = tall / line.ink_height, width = _stroke_width(sub); // px
  const grow = Math.floor(p.stroke * s - width + 0.5);
  if (width > p.stroke_max * p.stroke * s && tall >= 2 * line.ink_height) x = _min2(x, Math.trunc(p.thin * -grow) + 1);
  if (grow > 0) x = _max2(x, grow + 1);
  return { x, cy0, cx0 };
}

// lines.py _level: column c moved down by round(-slope x (c - w / 2)) px, so that ink along a line of that
// slope lies level: {h, w} -> {h + 2m, w}.
function _level(x, slope) {
  if (!slope) return x;
  const { h, w } = x, shift = new Int32Array(w);
  let m = 0;
  for (let c = 0; c < w; c++) { shift[c] = Math.floor(-slope * (c - w / 2) + 0.5); m = Math.max(m, Math.abs(shift[c])); }
  const oh = h + 2 * m, px = new Float32Array(oh * w);
  for (let c = 0; c < w; c++) for (let y = 0; y < h; y++) px[(m + shift[c] + y) * w + c] = x.px[y * w + c];
  return { h: oh, w, px };
}

// lines.py _strip: a levelled line -> {strip: the model's input {h: height, w: W (a multiple of stride)},
// per, at (x along the line = X x per + at), columns: the output columns that are the line's own}.
function _strip(x, line) {
  let ys0 = x.h, ys1 = -1, xs0 = x.w, xs1 = -1;
  for (let y = 0; y < x.h; y++) {
    for (let c = 0; c < x.w; c++) {
      if (x.px[y * x.w + c] > line.ink) { ys0 = Math.min(ys0, y); ys1 = Math.max(ys1, y); xs0 = Math.min(xs0, c); xs1 = Math.max(xs1, c); }
    }
  }
  const ah = ys1 - ys0 + 1, pad = Math.max(1, Math.floor((line.pad * ah) / line.ink_height + 0.5));
  const h = ah + 2 * pad, w = xs1 - xs0 + 1 + 2 * pad, a = new Float32Array(h * w);
  for (let y = ys0; y <= ys1; y++) a.set(x.px.subarray(y * x.w + xs0, y * x.w + xs1 + 1), (y - ys0 + pad) * w + pad);
  const height = Math.trunc(line.height), stride = Math.trunc(line.stride);
  const outW = Math.max(stride, Math.floor((w * height) / h + 0.5)), W = Math.ceil(outW / stride) * stride;
  const scaled = _resample({ h, w, px: a }, height, outW), px = new Float32Array(height * W); // zeros right of outW
  for (let o = 0; o < height; o++) px.set(scaled.subarray(o * outW, (o + 1) * outW), o * W);
  return { strip: { h: height, w: W, px }, per: w / outW, at: xs0 - pad, columns: Math.floor(outW / stride) };
}

// lines.py _decode: probabilities (classes x T, row-major), the columns read -> [class, first column,
// last column, the column where the class is likeliest] per digit, left to right.
function _decode(probs, T, columns, classes, blank) {
  const out = [];
  let before = -1;
  for (let t = 0; t < columns; t++) {
    let c = 0;
    for (let k = 1; k < classes; k++) if (probs[k * T + t] > probs[c * T + t]) c = k; // np.argmax: the first of equals
    if (c !== blank) {
      if (t && before === c) { // the same digit, one column on
        const last = out[out.length - 1];
        last[2] = t;
        if (probs[c * T + t] > probs[c * T + last[3]]) last[3] = t;
      } else out.push([c, t, t, t]);
    }
    before = c;
  }
  return out;
}

// lines.py _slope: the slope (px down per px right) of the least-squares line through the digits' centres,
// 0 for two or fewer.
function _slope(boxes) {
  const cx = boxes.map((b) => (b[1] + b[3]) / 2), cy = boxes.map((b) => (b[0] + b[2]) / 2);
  if (boxes.length < 3 || Math.max(...cx) === Math.min(...cx)) return 0;
  const mx = cx.reduce((s, v) => s + v, 0) / cx.length, my = cy.reduce((s, v) => s + v, 0) / cy.length;
  let num = 0, den = 0;
  for (let i = 0; i < cx.length; i++) { num += (cx[i] - mx) * (cy[i] - my); den += (cx[i] - mx) ** 2; }
  return num / den;
}

// np.logaddexp
function _logaddexp(a, b) {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

// lines.py _ctc: log P(digits | probs) as CTC defines it, probs (classes x T, row-major) over its first
// `columns` columns, summed over every alignment (the forward algorithm, in logs).
function _ctc(probs, T, columns, digits, blank) {
  const ext = [blank];
  for (const d of digits) ext.push(d, blank);
  const S = ext.length, lp = (c, t) => Math.log(Math.max(probs[c * T + t], 1e-30));
  let a = new Float64Array(S).fill(-Infinity);
  a[0] = lp(ext[0], 0);
  if (S > 1) a[1] = lp(ext[1], 0);
  for (let t = 1; t < columns; t++) {
    const b = new Float64Array(S);
    for (let s = 0; s < S; s++) {
      let v = a[s];
      if (s >= 1) v = _logaddexp(v, a[s - 1]);
      // a digit may follow the digit before it directly, but not an equal one
      if (s >= 2 && ext[s] !== blank && ext[s] !== ext[s - 2]) v = _logaddexp(v, a[s - 2]);
      b[s] = v + lp(ext[s], t);
    }
    a = b;
  }
  return S > 1 ? _logaddexp(a[S - 1], a[S - 2]) : a[S - 1];
}

// lines.py read_line: a line's digits ({input, box [y0, x0, y1, x1] working px, probs}) -> the line as the
// line model reads it, in the same form.
async function read_line(ink, digits, p, model) {
  const { run, line } = model, boxes = digits.map((dg) => dg.box), mask = _line_mask(ink, boxes);
  if (!mask) return digits;
  const { x, cy0, cx0 } = _ink_of(ink, mask, p, line);
  const { strip, per, at, columns } = _strip(_level(x, _slope(boxes)), line);
  const probs = await run(strip), stride = Math.trunc(line.stride), T = strip.w / stride, classes = probs.length / T;
  const read = _decode(probs, T, columns, classes, Math.trunc(line.blank));
  if (!read.length) return digits;
  if (read.length !== digits.length) {
    const blank = Math.trunc(line.blank), mine = digits.map((dg) => argmax(dg.probs));
    const theirs = read.map(([c]) => c);
    if (_ctc(probs, T, columns, mine, blank) + line.keep >= _ctc(probs, T, columns, theirs, blank)) return digits;
  }
  const out = read.map(([, first, last, peak]) => {
    const ten = new Float32Array(10);
    let sum = 0;
    for (let k = 0; k < 10; k++) sum += probs[k * T + peak];
    for (let k = 0; k < 10; k++) ten[k] = probs[k * T + peak] / f32(sum); // over the digits: the blank left out
    return { probs: ten, columns: [first, last] };
  });
  if (out.length === digits.length) { // the same digits: segment.js's boxes and inputs, both models' probabilities
    out.forEach((o, k) => {
      const both = Array.from(o.probs, (v, i) => Math.max(v, 1e-30) * Math.max(digits[k].probs[i], 1e-30));
      const sum = both.reduce((s, v) => s + v, 0);
      o.probs = Float32Array.from(both, (v) => v / sum);
      o.input = digits[k].input;
      o.box = digits[k].box;
    });
  } else { // the line's ink cut halfway between the digits' columns
    const centres = out.map(({ columns: [a, b] }) => cx0 + at + ((a + b + 1) / 2) * stride * per);
    const cuts = [-Infinity, ...centres.slice(1).map((r, k) => (centres[k] + r) / 2), Infinity];
    const { h, w } = mask, [ry0, rx0, ry1, rx1] = mask.region;
    out.forEach((o, k) => {
      const part = { h, w, px: new Uint8Array(h * w), region: mask.region };
      let any = false;
      for (let y = ry0; y < ry1; y++) {
        for (let c = Math.max(rx0, Math.ceil(cuts[k])); c < Math.min(rx1, cuts[k + 1]); c++) {
          if (mask.px[y * w + c]) { part.px[y * w + c] = 1; any = true; }
        }
      }
      o.input = o.box = null;
      if (any) {
        try {
          [o.input, o.box] = _input(ink, part, p);
        } catch (e) {
          if (!(e instanceof ImageError)) throw e; // ink no darker than t there
        }
      }
      if (o.box === null) { // no ink in its columns: its columns, the line's height
        const x0 = Math.min(Math.max(Math.floor(centres[k] - (stride * per) / 2), 0), w - 1);
        o.input = new Float32Array(Math.trunc(p.canvas) ** 2);
        o.box = [ry0, x0, ry1, Math.min(x0 + Math.max(1, Math.trunc(stride * per)), w)];
      }
    });
  }
  return out.map(({ columns, ...o }) => o);
}

// lines.py read_lines: each line of a number read whole; as they are without a line model (model null), or
// when they hold one digit (a single digit reads as itself).
export async function read_lines(ink, lines, p, model) {
  if (!model || lines.reduce((n, line) => n + line.length, 0) < 2) return lines;
  const out = [];
  for (const line of lines) out.push(line.length ? await read_line(ink, line, p, model) : line);
  return out;
}
