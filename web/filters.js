// The small numpy building blocks: the twin of export/reader/filters.py (the frame, window widths,
// running max/min, openings, a 3x3 mean, the resampling matrix). First, the few numpy functions the
// Python modules call (median, percentile, min/max), written out as numpy computes them: where numpy
// computes in float32, so does the page (Float32Array stores, Math.fround as f32). Numpy 2 compares and
// combines a float32 array with a Python float in float32, hence the f32(t) in the other modules.

// A number rounded to float32, as numpy's float32 arithmetic rounds each result.
export const f32 = Math.fround;

// np.median of a float32 array: the middle value, or the float32 mean of the two middle values. Found by
// selection, not a sort (the same values: O(n), ~5x faster on a 320x240 image, which the camera reads
// ~10 times a second).
export function median(values) {
  const s = Float32Array.from(values), n = s.length, m = n >> 1;
  if (n === 0) return NaN;
  select(s, m);
  if (n % 2) return s[m];
  let below = -Infinity; // the largest of the lower half: the other middle value
  for (let i = 0; i < m; i++) if (s[i] > below) below = s[i];
  return f32(f32(below + s[m]) / 2);
}

// Reorder a (NaN-free) so that a[k] holds the value a sorted copy holds there, none after it smaller and
// none before it larger (Hoare's selection, median-of-three pivots).
function select(a, k) {
  let lo = 0, hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < a[lo]) [a[mid], a[lo]] = [a[lo], a[mid]];
    if (a[hi] < a[lo]) [a[hi], a[lo]] = [a[lo], a[hi]];
    if (a[hi] < a[mid]) [a[hi], a[mid]] = [a[mid], a[hi]];
    const pivot = a[mid];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

// np.percentile(a, q) of a float32 array, q a Python number (numpy 2's weak scalar: the
// interpolation runs in float32, as numpy's _lerp, from the top when the fraction is >= 0.5).
export function percentile32(sorted, q) {
  const n = sorted.length, vi = (n - 1) * (q / 100);
  if (vi >= n - 1) return sorted[n - 1];
  const i = Math.floor(vi), g = vi - i, a = sorted[i], b = sorted[i + 1], diff = f32(b - a);
  return g >= 0.5 ? f32(b - f32(diff * f32(1 - g))) : f32(a + f32(diff * f32(g)));
}

// np.percentile(a, [q...]) (a list: float64 interpolation) of a float32 array.
export function percentile64(sorted, q) {
  const n = sorted.length, vi = (n - 1) * (q / 100);
  if (vi >= n - 1) return sorted[n - 1];
  const i = Math.floor(vi), g = vi - i, a = sorted[i], b = sorted[i + 1], diff = b - a;
  return g >= 0.5 ? b - diff * (1 - g) : a + diff * g;
}

// a.min() and a.max() of an array.
export function minMax(px) {
  let lo = Infinity, hi = -Infinity;
  for (const v of px) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

// np.argmax of an array: the index of its largest value, the first of equals.
export function argmax(v) {
  let k = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[k]) k = i;
  return k;
}

// filters.py _border: a frame 5% deep, the paper in nearly every photo or scan.
export function _border(x) {
  const k = Math.max(1, Math.floor(Math.min(x.h, x.w) / 20)), out = [];
  for (let y = 0; y < k; y++) for (let c = 0; c < x.w; c++) out.push(x.px[y * x.w + c]); // x[:k]
  for (let y = x.h - k; y < x.h; y++) for (let c = 0; c < x.w; c++) out.push(x.px[y * x.w + c]); // x[-k:]
  for (let y = 0; y < x.h; y++) for (let c = 0; c < k; c++) out.push(x.px[y * x.w + c]); // x[:, :k]
  for (let y = 0; y < x.h; y++) for (let c = x.w - k; c < x.w; c++) out.push(x.px[y * x.w + c]); // x[:, -k:]
  return out;
}

// filters.py _odd: a window width in pixels: round half up, odd (centred), at least `least`.
export function _odd(v, least = 1) {
  const k = Math.max(least, Math.floor(v + 0.5));
  return k % 2 ? k : k + 1;
}

// filters.py _run: running max (isMax) or min over a centred window of k pixels along `axis`
// (0: down columns, 1: along rows), the window cut at the image edges. Exact whatever the method:
// here van Herk / Gil-Werman blocks of k (O(1) per pixel) over whole rows at once (along rows:
// _runRows, one row at a time), a min as the max of negated values. The padded input and the blocks'
// running values live in scratch buffers reused from call to call (the camera runs ~30 of these a frame:
// fresh arrays each time cost as much again in allocation and garbage collection).
export function _run(a, k, axis, isMax) {
  if (k <= 1) return a;
  if (axis === 1) return _runRows(a, k, isMax);
  const { h: n, w: m, px } = a, sign = isMax ? 1 : -1, r = (k - 1) >> 1, L = n + k - 1;
  const [g, pre, suf] = scratch(L * m);
  g.fill(-Infinity, 0, r * m);
  g.fill(-Infinity, (r + n) * m, L * m);
  for (let i = 0, o = r * m; i < n * m; i++) g[o + i] = sign * px[i];
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
  const [g, pre, suf] = scratch(L), out = new px.constructor(px.length);
  g.fill(-Infinity, 0, L);
  for (let y = 0; y < h; y++) {
    const base = y * w;
    for (let i = 0; i < w; i++) g[r + i] = sign * px[base + i]; // the padding around stays -Infinity
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

// Three Float32Array(n) views of one buffer kept between calls (grown when a call needs more).
let scratchBuffer = new Float32Array(0);
function scratch(n) {
  if (scratchBuffer.length < 3 * n) scratchBuffer = new Float32Array(3 * n);
  return [0, 1, 2].map((i) => scratchBuffer.subarray(i * n, (i + 1) * n));
}

// filters.py _max2: square k x k running max.
export function _max2(a, k) { return _run(_run(a, k, 0, true), k, 1, true); }

// filters.py _min2
export function _min2(a, k) { return _run(_run(a, k, 0, false), k, 1, false); }

// filters.py _open1: 1-D opening, keeps the pixels of runs at least k long along `axis` (0/1 values).
export function _open1(a, k, axis) { return _run(_run(a, k, axis, false), k, axis, true); }

// filters.py _box3: 3x3 mean, edges replicated; numpy's order of float32 sums, then / 9.
export function _box3(a) {
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

// filters.py _components: 8-connected components of a mask, by runs in row-major order; a
// component is numbered by its first run (union by smallest index, as filters.py).
export function _components(mask) {
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

// filters.py _boxes: each component's box, {y0, x0, y1, x1} (Int32Array(n) each), ends exclusive.
export function _boxes(rows, starts, ends, comp, n, h, w) {
  const y0 = new Int32Array(n).fill(h), x0 = new Int32Array(n).fill(w), y1 = new Int32Array(n), x1 = new Int32Array(n);
  for (let r = 0; r < rows.length; r++) {
    const c = comp[r];
    y0[c] = Math.min(y0[c], rows[r]); y1[c] = Math.max(y1[c], rows[r] + 1);
    x0[c] = Math.min(x0[c], starts[r]); x1[c] = Math.max(x1[c], ends[r]);
  }
  return { y0, x0, y1, x1 };
}

// filters.py _weights: (n_out, n_in) resampling matrix, a triangle filter widened by the shrink
// factor (Pillow's BILINEAR), rows normalised in float64, stored as float32.
export function _weights(nIn, nOut) {
  const scale = nIn / nOut, support = Math.max(scale, 1), out = new Float32Array(nOut * nIn), row = new Float64Array(nIn);
  for (let o = 0; o < nOut; o++) {
    const centre = (o + 0.5) * scale;
    let sum = 0;
    for (let i = 0; i < nIn; i++) { row[i] = Math.max(1 - Math.abs(i + 0.5 - centre) / support, 0); sum += row[i]; }
    for (let i = 0; i < nIn; i++) out[o * nIn + i] = row[i] / sum;
  }
  return out;
}

// filters.py _resample: a {h, w, px} float32 resampled by _weights along each axis -> Float32Array(oh * ow):
// float32 matmuls as numpy's, each sum taken in float64 and rounded once.
export function _resample({ h, w, px }, oh, ow) {
  const wy = _weights(h, oh), wx = _weights(w, ow), tmp = new Float32Array(oh * w), out = new Float32Array(oh * ow);
  for (let o = 0; o < oh; o++) { // _weights(h, oh) @ a
    for (let c = 0; c < w; c++) {
      let s = 0;
      for (let i = 0; i < h; i++) s += wy[o * h + i] * px[i * w + c];
      tmp[o * w + c] = s;
    }
  }
  for (let o = 0; o < oh; o++) { // ... @ _weights(w, ow).T
    for (let q = 0; q < ow; q++) {
      let s = 0;
      for (let c = 0; c < w; c++) s += tmp[o * w + c] * wx[q * w + c];
      out[o * ow + q] = s;
    }
  }
  return out;
}
