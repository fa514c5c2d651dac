// Any image of one digit -> the 28x28 float input the model takes: a mirror of export/predict.py.
//
// Each function here mirrors the Python function of the same name, in the same order, step by
// step, so that a change there is easy to carry over here. Arrays are row-major; a gray image is
// {h, w, px: Float32Array(h * w)} (predict.py's float32 (H, W) arrays), a mask {h, w, px: Uint8Array}.
// Where numpy computes in float32, so does this file (Float32Array stores, Math.fround): numpy 2
// compares and combines a float32 array with a Python float in float32, hence the f32(t) below.
// Every number comes from `params`, the model's metadata `preprocessing` entry over DEFAULTS
// (predict.py's PREPROCESSING, the only copy here: the fallback for models exported without them).
// What the browser does instead of Pillow: decoding (and EXIF rotation) happens in app.js, which
// hands over RGBA ImageData. A JPEG, which predict.py decodes at 1/2-1/8 scale in the DCT domain
// (Pillow's draft mode, its Y channel only), is decoded by the browser at full size, then box-reduced
// by the same 1/2-1/8 and reduced as any other image (to_gray): the same working image size, but
// pixels that differ a little, so JPEG inputs agree closely, not exactly. PNG files match to ~1e-7.
// An RGBA file without a transparent pixel takes predict.py's convert("L") path here (the browser
// does not say whether the file had an alpha channel) and its RGBA path in predict.py: close, not equal.

// predict.py's module constant (not a preprocessing number).
export const MAX_PIXELS = 50_000_000; // larger images are refused (decompression bombs)
// predict.py PREPROCESSING and DEFAULTS: the fallback for numbers a model's metadata lacks.
export const DEFAULTS = {
  labels: [...Array(10).keys()].map(String),
  preprocessing: {
    fit: 20, canvas: 28, work: 320, luma: [0.299, 0.587, 0.114],
    polarity_window: 0.3, polarity_min_side: 64, sheet_wide: [0.5, 0.75],
    paper_window: 0.3, paper_speck: 3, speck_dark: 0.5, paper_floor: 0.45, min_ink: 0.25, ink_rel: 0.25,
    line_noise: 0.07, line_thin: 0.02, line_length: 0.15, line_tilt: 10, line_gap: 5, line_min: 0.5,
    line_percentile: 95, line_contrast: 1.5, line_margin: 1.4, line_max_rel: 0.75,
    min_size: 0.05, min_thickness: 0.04, mark_peak: 0.5, mark_ink: 0.3, border_contact: 0.4, edge: 0.01,
    desk_step: 0.75, desk_reach: 8, desk_ground: 0.1, desk_frame: 2, unsure_ground: 0.75, centre_weight: 2.0, merge: 0.25, merge_min: 0.02,
  },
};

// predict.py ImageError: one input cannot be classified; the message is the reason, one line.
export class ImageError extends Error {}

const f32 = Math.fround;

// predict.py _same_kind: a metadata value may replace a default of the same kind.
function _same_kind(value, fallback) {
  const number = (v) => typeof v === "number" && Number.isFinite(v);
  if (Array.isArray(fallback)) return Array.isArray(value) && value.length === fallback.length && value.every(number);
  return number(value);
}

// predict.py DigitClassifier.__init__: the model's own preprocessing numbers where it has them
// (older exports hold only some, plus descriptive strings), the defaults for the rest.
export function preprocessingParams(prep) {
  const out = {};
  for (const [k, v] of Object.entries(DEFAULTS.preprocessing)) out[k] = _same_kind(prep?.[k], v) ? prep[k] : v;
  return out;
}

// np.median of a float32 array: the middle value, or the float32 mean of the two middle values.
function median(values) {
  const s = Float32Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : f32(f32(s[m - 1] + s[m]) / 2);
}

// np.percentile(a, q) of a float32 array, q a Python number (numpy 2's weak scalar: the
// interpolation runs in float32, as numpy's _lerp, from the top when the fraction is >= 0.5).
function percentile32(sorted, q) {
  const n = sorted.length, vi = (n - 1) * (q / 100);
  if (vi >= n - 1) return sorted[n - 1];
  const i = Math.floor(vi), g = vi - i, a = sorted[i], b = sorted[i + 1], diff = f32(b - a);
  return g >= 0.5 ? f32(b - f32(diff * f32(1 - g))) : f32(a + f32(diff * f32(g)));
}

// np.percentile(a, [q...]) (a list: float64 interpolation) of a float32 array.
function percentile64(sorted, q) {
  const n = sorted.length, vi = (n - 1) * (q / 100);
  if (vi >= n - 1) return sorted[n - 1];
  const i = Math.floor(vi), g = vi - i, a = sorted[i], b = sorted[i + 1], diff = b - a;
  return g >= 0.5 ? b - diff * (1 - g) : a + diff * g;
}

function minMax(px) {
  let lo = Infinity, hi = -Infinity;
  for (const v of px) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

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

// predict.py _composite: flatten gray `y` with transparency onto a ground the ink shows up on.
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

// predict.py to_gray: RGBA ImageData {width, height, data} -> gray in [0, 1], as it looks (not
// yet inverted), box-reduced by floor(longer side / work) when the longer side is >= 2 x work.
// The browser gives 8-bit RGBA for every format; an image with any transparent pixel takes
// predict.py's RGBA path (luma from `luma`), any other its convert("L") path (Pillow's luma).
export function to_gray(image, work = DEFAULTS.preprocessing.work, luma = DEFAULTS.preprocessing.luma, jpeg = false) {
  let { width: w, height: h, data } = image;
  if (w * h === 0) throw new ImageError(`unsupported image shape (${h}, ${w})`);
  if (jpeg && work) {
    // predict.py load_image: img.draft("L", ...) decodes a JPEG at 1/s scale (s = 8, 4, 2 or 1, as
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

// predict.py _border: a frame 5% deep, the paper in nearly every photo or scan.
function _border(x) {
  const k = Math.max(1, Math.floor(Math.min(x.h, x.w) / 20)), out = [];
  for (let y = 0; y < k; y++) for (let c = 0; c < x.w; c++) out.push(x.px[y * x.w + c]); // x[:k]
  for (let y = x.h - k; y < x.h; y++) for (let c = 0; c < x.w; c++) out.push(x.px[y * x.w + c]); // x[-k:]
  for (let y = 0; y < x.h; y++) for (let c = 0; c < k; c++) out.push(x.px[y * x.w + c]); // x[:, :k]
  for (let y = 0; y < x.h; y++) for (let c = x.w - k; c < x.w; c++) out.push(x.px[y * x.w + c]); // x[:, -k:]
  return out;
}

// predict.py _odd: a window width in pixels: round half up, odd (centred), at least `least`.
function _odd(v, least = 1) {
  const k = Math.max(least, Math.floor(v + 0.5));
  return k % 2 ? k : k + 1;
}

function transpose(a) {
  const { h, w, px } = a, out = new px.constructor(px.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[x * h + y] = px[y * w + x];
  return { h: w, w: h, px: out };
}

// predict.py _run: running max (isMax) or min over a centred window of k pixels along `axis`
// (0: down columns, 1: along rows), the window cut at the image edges. Exact whatever the method:
// here van Herk / Gil-Werman blocks of k (O(1) per pixel) over whole rows at once (along rows:
// on the transpose), a min as the max of negated values.
function _run(a, k, axis, isMax) {
  if (k <= 1) return a;
  if (axis === 1) return _runRows(a, k, isMax);
  const { h: n, w: m, px } = a, sign = isMax ? 1 : -1, r = (k - 1) >> 1, L = n + k - 1;
  const g = new Float32Array(L * m).fill(-Infinity), pre = new Float32Array(L * m), suf = new Float32Array(L * m);
  for (let i = 0; i < n * m; i++) g[r * m + i] = sign * px[i];
  for (let b0 = 0; b0 < L; b0 += k) {
    const b1 = Math.min(b0 + k, L);
    pre.set(g.subarray(b0 * m, (b0 + 1) * m), b0 * m);
    suf.set(g.subarray((b1 - 1) * m, b1 * m), (b1 - 1) * m);
    for (let j = b0 + 1; j < b1; j++) {
      for (let c = j * m, e = c + m; c < e; c++) { const p = pre[c - m], v = g[c]; pre[c] = p > v ? p : v; }
    }
    for (let j = b1 - 2; j >= b0; j--) {
      for (let c = j * m, e = c + m; c < e; c++) { const p = suf[c + m], v = g[c]; suf[c] = p > v ? p : v; }
    }
  }
  const out = new px.constructor(px.length), shift = (k - 1) * m;
  for (let i = 0; i < n * m; i++) { const u = suf[i], v = pre[i + shift]; out[i] = sign * (u > v ? u : v); }
  return { h: n, w: m, px: out };
}

// _run along rows (axis 1): the same blocks, one row at a time.
function _runRows(a, k, isMax) {
  const { h, w, px } = a, sign = isMax ? 1 : -1, r = (k - 1) >> 1, L = w + k - 1;
  const g = new Float32Array(L), pre = new Float32Array(L), suf = new Float32Array(L), out = new px.constructor(px.length);
  for (let y = 0; y < h; y++) {
    const base = y * w;
    g.fill(-Infinity);
    for (let i = 0; i < w; i++) g[r + i] = sign * px[base + i];
    for (let b0 = 0; b0 < L; b0 += k) {
      const b1 = Math.min(b0 + k, L);
      let p = (pre[b0] = g[b0]);
      for (let j = b0 + 1; j < b1; j++) { const v = g[j]; if (v > p) p = v; pre[j] = p; }
      p = suf[b1 - 1] = g[b1 - 1];
      for (let j = b1 - 2; j >= b0; j--) { const v = g[j]; if (v > p) p = v; suf[j] = p; }
    }
    for (let i = 0; i < w; i++) { const u = suf[i], v = pre[i + k - 1]; out[base + i] = sign * (u > v ? u : v); }
  }
  return { h, w, px: out };
}

// predict.py _max2: square k x k running max.
function _max2(a, k) { return _run(_run(a, k, 0, true), k, 1, true); }

// predict.py _min2
function _min2(a, k) { return _run(_run(a, k, 0, false), k, 1, false); }

// predict.py _open1: 1-D opening, keeps the pixels of runs at least k long along `axis` (0/1 values).
function _open1(a, k, axis) { return _run(_run(a, k, axis, false), k, axis, true); }

// predict.py _box3: 3x3 mean, edges replicated; numpy's order of float32 sums, then / 9.
function _box3(a) {
  const { h, w, px } = a, out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = -1; i <= 1; i++) {
        const yy = Math.min(Math.max(y + i, 0), h - 1) * w;
        for (let j = -1; j <= 1; j++) s = f32(s + px[yy + Math.min(Math.max(x + j, 0), w - 1)]);
      }
      out[y * w + x] = f32(s / 9);
    }
  }
  return { h, w, px: out };
}

// predict.py _polarities: the readings to try in order (true = light ink on a dark ground, invert).
function _polarities(g, k, p) {
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

// predict.py _lines: (H, W) mask of ruled or grid line pixels: thin across, long along (+-tilt).
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

// predict.py _components: 8-connected components of a mask, by runs in row-major order; a
// component is numbered by its first run (union by smallest index, as predict.py).
function _components(mask) {
  const { h, w, px } = mask, rows = [], starts = [], ends = [], rowFirst = new Int32Array(h + 1);
  for (let y = 0; y < h; y++) {
    rowFirst[y] = rows.length;
    for (let x = 0; x < w; x++) {
      if (px[y * w + x] && (x === 0 || !px[y * w + x - 1])) { rows.push(y); starts.push(x); }
      if (px[y * w + x] && (x === w - 1 || !px[y * w + x + 1])) ends.push(x + 1);
    }
  }
  rowFirst[h] = rows.length;
  const n = rows.length, parent = new Int32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (i) => { while (parent[i] !== i) { parent[i] = parent[parent[i]]; i = parent[i]; } return i; };
  for (let y = 0; y + 1 < h; y++) { // run a (row y) touches run b (row y + 1): b.start <= a.end and a.start <= b.end
    for (let a = rowFirst[y]; a < rowFirst[y + 1]; a++) {
      for (let b = rowFirst[y + 1]; b < rowFirst[y + 2]; b++) {
        if (starts[b] > ends[a]) break;
        if (starts[a] <= ends[b]) {
          const ra = find(a), rb = find(b);
          if (ra !== rb) { if (ra < rb) parent[rb] = ra; else parent[ra] = rb; }
        }
      }
    }
  }
  const comp = new Int32Array(n), label = new Int32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) { const r = find(i); if (r === i) label[i] = count++; comp[i] = label[r]; }
  return { rows, starts, ends, comp, n: count };
}

// predict.py _marks: per 8-connected mark of a mask: its runs, area, ink mass (summed d), centre,
// box (y0, x0, y1, x1; ends exclusive), longer side, frame contact, the paper level's steepest drop and
// step beside it, and the ground around it.
function _marks(mask, d, paper, p) {
  const { h, w } = mask, { rows, starts, ends, comp, n } = _components(mask);
  // Row prefix sums of darkness in float32 (np.cumsum), the run's mass their float32 difference.
  const csum = new Float32Array(h * (w + 1));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) csum[y * (w + 1) + x + 1] = f32(csum[y * (w + 1) + x] + d.px[y * w + x]);
  const m = {
    rows, starts, ends, comp, n, area: new Float64Array(n), mass: new Float64Array(n), cy: new Float64Array(n),
    cx: new Float64Array(n), y0: new Int32Array(n).fill(h), x0: new Int32Array(n).fill(w), y1: new Int32Array(n),
    x1: new Int32Array(n), side: new Int32Array(n), peak: new Float64Array(n), contact: new Float64Array(n),
    rim: new Uint8Array(n), drop: new Float64Array(n).fill(1), step: new Float64Array(n).fill(1), ground: new Float64Array(n),
  };
  const e = Math.max(1, Math.floor(p.edge * Math.min(h, w) + 0.5));
  let ratio = null, drop = null; // the paper level's steepest step either way, and its steepest drop
  if (paper) { // None: the frame shows no desk
    const win = 2 * Math.trunc(p.desk_reach) + 1, eps = f32(1e-6);
    const low = _min2(paper, win), high = _max2(paper, win);
    ratio = new Float32Array(h * w);
    drop = new Float32Array(h * w);
    for (let i = 0; i < ratio.length; i++) {
      ratio[i] = f32(low.px[i] / Math.max(high.px[i], eps));
      drop[i] = f32(low.px[i] / Math.max(paper.px[i], eps));
    }
  }
  for (let i = 0; i < rows.length; i++) {
    const c = comp[i], y = rows[i], s = starts[i], t = ends[i], len = t - s;
    m.area[c] += len;
    m.mass[c] += f32(csum[y * (w + 1) + t] - csum[y * (w + 1) + s]);
    m.cy[c] += y * len;
    m.cx[c] += ((s + t - 1) / 2) * len;
    m.y0[c] = Math.min(m.y0[c], y); m.y1[c] = Math.max(m.y1[c], y + 1);
    m.x0[c] = Math.min(m.x0[c], s); m.x1[c] = Math.max(m.x1[c], t);
    for (let x = s; x < t; x++) {
      m.peak[c] = Math.max(m.peak[c], d.px[y * w + x]);
      if (y < e || y >= h - e || x < e || x >= w - e) m.contact[c] += 1;
      if (ratio) {
        m.step[c] = Math.min(m.step[c], ratio[y * w + x]);
        m.drop[c] = Math.min(m.drop[c], drop[y * w + x]);
      }
    }
  }
  for (let c = 0; c < n; c++) {
    m.cy[c] /= Math.max(m.area[c], 1);
    m.cx[c] /= Math.max(m.area[c], 1);
    m.side[c] = Math.max(m.y1[c] - m.y0[c], m.x1[c] - m.x0[c]);
    m.rim[c] = m.contact[c] >= m.area[c] ? 1 : 0; // all of it within the frame's margin
    m.contact[c] /= e;
  }
  if (!paper) return m; // no desk in the frame: the ground is never asked for
  // The ground: mean darkness of the pixels in the mark's box that are not the mark's (np.cumsum in
  // float64 down the columns, then along the rows).
  const W = w + 1, ii = new Float64Array((h + 1) * W);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) ii[(y + 1) * W + x + 1] = ii[y * W + x + 1] + d.px[y * w + x];
  for (let y = 1; y <= h; y++) for (let x = 1; x <= w; x++) ii[y * W + x] += ii[y * W + x - 1];
  for (let c = 0; c < n; c++) {
    const y0 = m.y0[c], x0 = m.x0[c], y1 = m.y1[c], x1 = m.x1[c];
    const inbox = ii[y1 * W + x1] - ii[y0 * W + x1] - ii[y1 * W + x0] + ii[y0 * W + x0];
    m.ground[c] = (inbox - m.mass[c]) / Math.max((y1 - y0) * (x1 - x0) - m.area[c], 1);
  }
  return m;
}

// predict.py _paint: the mask of the pixels of the marks where keep[mark] is true.
function _paint(m, keep, h, w) {
  const out = new Uint8Array(h * w);
  for (let i = 0; i < m.rows.length; i++) {
    if (keep[m.comp[i]]) out.fill(1, m.rows[i] * w + m.starts[i], m.rows[i] * w + m.ends[i]);
  }
  return { h, w, px: out };
}

// predict.py _desk: marks that are desk, not ink: along or wholly at the frame's edge, or at a sheet's edge
// (a drop in the paper level beside them, or a step either way on a dark ground).
function _desk(m, p) {
  const out = new Uint8Array(m.n);
  for (let c = 0; c < m.n; c++) {
    const step = m.step[c] < p.desk_step && m.ground[c] >= p.desk_ground;
    out[c] = m.contact[c] > p.border_contact * m.side[c] || m.rim[c] || m.drop[c] < p.desk_step || step ? 1 : 0;
  }
  return out;
}

// predict.py _digit: the mask of the marks darker than t that make the digit, or an ImageError.
function _digit(d, t, paper, p) {
  const { h, w } = d, s = Math.min(h, w), tt = f32(t), above = new Uint8Array(h * w);
  for (let i = 0; i < above.length; i++) above[i] = d.px[i] > tt ? 1 : 0;
  const m = _marks({ h, w, px: above }, d, paper, p);
  if (m.n === 0) throw new ImageError("no digit found (blank image)");
  const desk = _desk(m, p), ok = new Uint8Array(m.n), minSide = Math.max(3, p.min_size * s);
  let top = 0; // peak[ok].max(initial=0)
  for (let c = 0; c < m.n; c++) {
    ok[c] = m.side[c] >= minSide && m.area[c] >= p.min_thickness * m.side[c] ** 2 && !desk[c] ? 1 : 0;
    if (ok[c]) top = Math.max(top, m.peak[c]);
  }
  const least = Math.max(p.mark_ink, p.mark_peak * top);
  let any = false, best = 0, bestScore = -Infinity;
  for (let c = 0; c < m.n; c++) {
    ok[c] = ok[c] && m.peak[c] >= least ? 1 : 0;
    any ||= !!ok[c];
    const r = Math.hypot(m.cy[c] - (h - 1) / 2, m.cx[c] - (w - 1) / 2) / s;
    const score = ok[c] ? m.mass[c] / (1 + p.centre_weight * r) : -1;
    if (score > bestScore) { bestScore = score; best = c; } // np.argmax: the first of equals
  }
  if (!any) throw new ImageError("no digit found (blank image)");
  const g = p.merge * m.side[best], keep = new Uint8Array(m.n);
  for (let c = 0; c < m.n; c++) {
    const near = !desk[c] && m.y1[c] > m.y0[best] - g && m.y0[c] < m.y1[best] + g
      && m.x1[c] > m.x0[best] - g && m.x0[c] < m.x1[best] + g; // boxes overlap the digit's, grown by g
    keep[c] = near && m.mass[c] >= p.merge_min * m.mass[best] ? 1 : 0;
  }
  keep[best] = 1;
  return _paint(m, keep, h, w);
}

// predict.py _weights: (n_out, n_in) resampling matrix, a triangle filter widened by the shrink
// factor (Pillow's BILINEAR), rows normalised in float64, stored as float32.
function _weights(nIn, nOut) {
  const scale = nIn / nOut, support = Math.max(scale, 1), out = new Float32Array(nOut * nIn), row = new Float64Array(nIn);
  for (let o = 0; o < nOut; o++) {
    const centre = (o + 0.5) * scale;
    let sum = 0;
    for (let i = 0; i < nIn; i++) { row[i] = Math.max(1 - Math.abs(i + 0.5 - centre) / support, 0); sum += row[i]; }
    for (let i = 0; i < nIn; i++) out[o * nIn + i] = row[i] / sum;
  }
  return out;
}

// predict.py _steps: the whole preprocessing, in order -> Float32Array(canvas * canvas).
function _steps(image, p, jpeg = false) {
  // 1. Grey working image, longer side work..2*work-1 px (or smaller if the input is).
  const g = to_gray(image, Math.trunc(p.work), p.luma, jpeg);
  // 2. Polarity: dark ink on light paper (when unsure, the second reading if the first finds no digit).
  const readings = _polarities(g, _odd(p.polarity_window * Math.min(g.h, g.w), 3), p);
  for (let i = 0; i < readings.length; i++) {
    try {
      return _read(readings[i] ? { ...g, px: g.px.map((v) => 1 - v) } : g, readings[i], p, readings.length > 1);
    } catch (e) {
      if (!(e instanceof ImageError) || i === readings.length - 1) throw e;
    }
  }
}

// predict.py _read: steps 3-7 on a grey image of dark ink on light paper (`unsure`: one of two polarities tried).
function _read(g, inverted, p, unsure = false) {
  const fit = Math.trunc(p.fit), canvas = Math.trunc(p.canvas), { h, w } = g, n = h * w;
  const k = _odd(p.paper_window * Math.min(h, w), 3);
  // 3. Paper level, locally (a grey closing, JPEG ringing beside a dark desk opened away first), and
  // darkness relative to it.
  const o = Math.trunc(p.paper_speck), dark = _min2(g, 2 * o + 1), opened = _max2(_min2(g, o), o);
  const gp = { h, w, px: new Float32Array(n) }, sd = f32(p.speck_dark);
  for (let i = 0; i < n; i++) gp.px[i] = dark.px[i] < f32(sd * g.px[i]) ? opened.px[i] : g.px[i];
  const paper = _min2(_max2(gp, k), k), floor = f32(p.paper_floor), dpx = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    dpx[i] = Math.min(Math.max(f32(f32(paper.px[i] - g.px[i]) / Math.max(paper.px[i], floor)), 0), 1);
  }
  const d = { h, w, px: dpx }, d3 = _box3(d);
  // 4. The sheet: drop the desk the closing filled in beside a sheet's edge, and desk grain just off it.
  const border = Float32Array.from(_border(paper)).sort();
  const deskFrame = percentile32(border, p.desk_frame) < p.desk_step * minMax(paper.px)[1];
  const minInk = f32(p.min_ink), seed = new Uint8Array(n);
  for (let i = 0; i < n; i++) seed[i] = d3.px[i] > minInk ? 1 : 0;
  const m = _marks({ h, w, px: seed }, d3, deskFrame ? paper : null, p);
  const desk = _paint(m, _desk(m, p), h, w);
  for (let i = 0; i < n; i++) if (desk.px[i]) { dpx[i] = 0; d3.px[i] = 0; }
  const peak = minMax(d3.px)[1];
  if (peak < p.min_ink) throw new ImageError("no digit found (blank image)");
  // 5. Ruled and grid lines: when present, ink must be clearly darker than they are.
  const lines = _lines(d3, p);
  let t = p.ink_rel * peak, count = 0;
  for (let i = 0; i < n; i++) count += lines.px[i];
  if (count >= p.line_min * (h + w)) {
    const onLines = new Float32Array(count);
    for (let i = 0, j = 0; i < n; i++) if (lines.px[i]) onLines[j++] = d3.px[i];
    const level = percentile32(onLines.sort(), p.line_percentile);
    if (peak < p.line_contrast * level) throw new ImageError("no digit found (blank image; only ruled lines)");
    t = Math.min(Math.max(t, p.line_margin * level), p.line_max_rel * peak);
  }
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
  const bh = y1 - y0, bw = x1 - x0, tt = f32(t), scale = f32(Math.max(ink - t, 1e-6)), x = new Float32Array(bh * bw);
  for (let y = 0; y < bh; y++) {
    for (let c = 0; c < bw; c++) {
      const i = (y + y0) * w + c + x0;
      x[y * bw + c] = mask.px[i] ? Math.min(Math.max(f32(f32(dpx[i] - tt) / scale), 0), 1) : 0;
    }
  }
  // 7. MNIST's own steps: longer side to `fit` px, values to peak 1, centre of mass at the canvas centre.
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

// predict.py preprocess: any image of one digit -> Float32Array(canvas * canvas) in [0, 1], light
// digit on dark, as in MNIST. `params`: preprocessingParams(the model's metadata entry).
// `jpeg`: the file was a JPEG (predict.py decodes those at reduced scale; see to_gray).
export function preprocess(image, params = DEFAULTS.preprocessing, { jpeg = false } = {}) {
  return _steps(image, params, jpeg);
}
