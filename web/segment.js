// A whole number (step 6 for many digits): the twin of export/reader/segment.py. The plausible marks
// grouped into digits, in reading order: lines top to bottom (marks of a digit's height whose vertical
// extents overlap; shorter parts to the nearest line), digits left to right (whole marks, with the parts
// they overlap; pieces joined where the classifier reads them better as one), specks, dots and underlines
// left out, touching digits cut in two where the width and the classifier's evidence say two, a number
// turned 90 degrees read both ways and kept the way the classifier is surer of on the whole. Each digit
// then goes through MNIST's own steps into its own canvas x canvas input; every input it classifies is
// read five times, moved a pixel each way (_shifted). Where a line model is at hand, each line of a number
// of two digits or more is then read again, whole, by it (lines.js). A number of two digits or more is
// read a second time on a crop of the input around its digits (read_number's second look).
//
// `classify` is async here (onnxruntime-web): Float32Array(canvas * canvas)[] -> Float32Array(classes)[]
// of probabilities; so are the functions that call it. The decisions are segment.py's, in its order.

import { ImageError, _grey } from "./image.js";
import { read_lines } from "./lines.js";
import { _paint, _plausible } from "./marks.js";
import { _ink, _input, _one, _polar_grey } from "./preprocess.js";

// np.median of integers or float64 values: the middle one, or the mean of the two middle ones.
function median64(values) {
  const s = Float64Array.from(values).sort(), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Python's sorted() by a tuple key: a stable sort comparing the keys' entries in turn.
function sortBy(items, key) {
  const keyed = items.map((v) => [key(v), v]);
  keyed.sort((a, b) => {
    for (let i = 0; i < a[0].length; i++) if (a[0][i] !== b[0][i]) return a[0][i] < b[0][i] ? -1 : 1;
    return 0;
  });
  return keyed.map((kv) => kv[1]);
}

// segment.py _lines: mark indices -> one list of them per line (the line a mark's vertical extent
// overlaps most, by more than line_overlap x the shorter of the two; marks taken top down).
function _lines(idx, m, p) {
  const lines = []; // [y0, y1, members]
  for (const i of sortBy(idx, (i) => [m.y0[i], m.x0[i], i])) {
    const y0 = m.y0[i], y1 = m.y1[i];
    let best = null, most = 0;
    for (const line of lines) {
      const ov = (Math.min(y1, line[1]) - Math.max(y0, line[0])) / Math.min(y1 - y0, line[1] - line[0]);
      if (ov > p.line_overlap && ov > most) { best = line; most = ov; }
    }
    if (best === null) lines.push([y0, y1, [i]]);
    else { best[0] = Math.min(best[0], y0); best[1] = Math.max(best[1], y1); best[2].push(i); }
  }
  return lines.map((line) => line[2]);
}

// segment.py _columns: the whole marks and the parts of one line -> the digits, lists of mark indices,
// left to right (whole marks on their own unless overlapping the digit before by more than join_overlap x
// the narrower; each part with the digit it overlaps most, or the nearest within part_gap x tall).
function _columns(whole, parts, m, tall, p) {
  const groups = []; // [x0, x1, members]
  for (const i of sortBy(whole, (i) => [m.x0[i] + m.x1[i], m.y0[i], i])) {
    const x0 = m.x0[i], x1 = m.x1[i], g = groups[groups.length - 1];
    if (g && Math.min(x1, g[1]) - Math.max(x0, g[0]) > p.join_overlap * Math.min(x1 - x0, g[1] - g[0])) {
      g[0] = Math.min(g[0], x0); g[1] = Math.max(g[1], x1); g[2].push(i);
    } else {
      groups.push([x0, x1, [i]]);
    }
  }
  const lone = []; // parts near no digit
  for (const i of sortBy(parts, (i) => [m.x0[i], m.y0[i], i])) {
    const x0 = m.x0[i], x1 = m.x1[i];
    let best = null, most = -p.part_gap * tall; // overlap in px (negative: the gap between them)
    for (const g of groups) {
      const ov = Math.min(x1, g[1]) - Math.max(x0, g[0]);
      if (ov > most) { best = g; most = ov; }
    }
    if (best === null) {
      const last = lone[lone.length - 1];
      if (last && Math.min(x1, last[1]) - Math.max(x0, last[0]) > 0) { last[0] = Math.min(last[0], x0); last[1] = Math.max(last[1], x1); last[2].push(i); }
      else lone.push([x0, x1, [i]]);
    } else {
      let mass = 0;
      for (const j of best[2]) mass += m.mass[j];
      if (m.mass[i] >= p.merge_min * mass) best[2].push(i); // dust beside a digit is no part
    }
  }
  return sortBy(groups.concat(lone), (g) => [g[0] + g[1], g[2][0]]).map((g) => g[2]);
}

// segment.py _box: [y0, x0, y1, x1] around the marks, ends exclusive.
function _box(members, m) {
  return [Math.min(...members.map((i) => m.y0[i])), Math.min(...members.map((i) => m.x0[i])),
    Math.max(...members.map((i) => m.y1[i])), Math.max(...members.map((i) => m.x1[i]))];
}

// segment.py _sized: the plausible marks of a digit's size (their longer side at least half the median's).
function _sized(m, ok) {
  const idx = [];
  for (let c = 0; c < m.n; c++) if (ok[c]) idx.push(c);
  if (!idx.length) return idx;
  const half = 0.5 * median64(idx.map((i) => m.side[i]));
  return idx.filter((i) => m.side[i] >= half);
}

// segment.py _across: do 3 or more marks of a digit's size share columns more often than lines? Pairs whose
// horizontal extents overlap by more than line_overlap x the shorter, against pairs whose vertical ones do
// (a number of two lines turned 90 degrees, its box about as tall as wide).
function _across(m, ok, p) {
  const idx = _sized(m, ok);
  const pairs = (a0, a1) => { // extents -> pairs that overlap so
    let n = 0;
    for (let i = 0; i < idx.length; i++) {
      for (let j = i + 1; j < idx.length; j++) {
        const [a, b] = [idx[i], idx[j]];
        const over = Math.min(a1[a], a1[b]) - Math.max(a0[a], a0[b]);
        if (over > p.line_overlap * Math.min(a1[a] - a0[a], a1[b] - a0[b])) n++;
      }
    }
    return n;
  };
  return idx.length >= 3 && pairs(m.x0, m.x1) > pairs(m.y0, m.y1);
}

// segment.py _vertical: do the marks stand in a column (a number turned 90 degrees)? -> how many marks of a
// digit's size, when their box together is more than turn_tall x as tall as wide (1 or 2 marks: turn_merged x),
// else 0.
function _vertical(m, ok, p) {
  const idx = _sized(m, ok);
  if (!idx.length) return 0;
  const h = Math.max(...idx.map((i) => m.y1[i])) - Math.min(...idx.map((i) => m.y0[i]));
  const w = Math.max(...idx.map((i) => m.x1[i])) - Math.min(...idx.map((i) => m.x0[i]));
  return h > (idx.length >= 3 ? p.turn_tall : p.turn_merged) * w ? idx.length : 0;
}

// segment.py _groups: the digits as mark indices, per line, per digit, and the digits' typical height.
function _groups(m, ok, inside, p) {
  const idx = [];
  for (let c = 0; c < m.n; c++) if (ok[c]) idx.push(c);
  const heights = idx.map((i) => m.y1[i] - m.y0[i]), top = Math.max(...heights);
  const tall = median64(heights.filter((v) => v >= p.speck_rel * top)); // px: the digits' height, specks aside
  // Marks too small to be a digit by themselves may still be parts of one: as dark and as clear of their
  // ground as a digit's marks.
  const least = Math.max(p.mark_ink, p.mark_peak * Math.max(...idx.map((i) => m.peak[i])));
  // An underline (flat, long, longer than a digit is tall) is part of no digit. A whole mark, and parts near no
  // digit together, are at least part_rel x the higher median tall (beside a digit, a stray stroke is none).
  const under = (i) => { const h = m.y1[i] - m.y0[i], w = m.x1[i] - m.x0[i]; return h < p.flat_rel * tall && w > p.flat_long * h && w > tall; };
  const near = heights.filter((v) => v >= p.speck_rel * top).sort((a, b) => a - b);
  const high = p.part_rel * near[Math.floor(near.length / 2)]; // px
  // Lines from the whole marks; each part goes to the line nearest its centre, within part_reach x tall.
  const whole = idx.filter((i) => m.y1[i] - m.y0[i] >= high && !under(i)), isWhole = new Set(whole);
  const rows = _lines(whole, m, p);
  const spans = rows.map((line) => [Math.min(...line.map((i) => m.y0[i])), Math.max(...line.map((i) => m.y1[i]))]);
  const parts = rows.map(() => []);
  for (let c = 0; c < m.n; c++) {
    const loose = inside[c] && !ok[c] && m.peak[c] >= least && m.peak[c] - m.ground[c] >= p.mark_contrast;
    if (!(ok[c] || loose) || under(c) || isWhole.has(c)) continue;
    const cy = m.cy[c];
    let k = -1, gap = Infinity;
    spans.forEach(([y0, y1], j) => { const v = Math.max(y0 - cy, cy - (y1 - 1), 0); if (v < gap) { gap = v; k = j; } }); // px from the line
    if (k >= 0 && gap <= p.part_reach * tall) parts[k].push(c);
  }
  const out = [];
  rows.forEach((line, j) => {
    const keep = [];
    for (const g of _columns(line, parts[j], m, tall, p)) {
      const [y0, x0, y1, x1] = _box(g, m), h = y1 - y0, w = x1 - x0;
      if (Math.max(h, w) < p.speck_rel * tall || !g.some((i) => ok[i])) continue; // a speck, a dot, or parts of none
      if (h < high && !g.some((i) => isWhole.has(i))) continue; // parts near no digit, short as a whole: a stray stroke
      if (h < p.flat_rel * tall && w > p.flat_long * h) continue; // an underline or a dash: flat and long
      keep.push(g);
    }
    if (keep.length) out.push(keep);
  });
  return { groups: out, tall };
}

// segment.py _cuts: candidate cuts of a wide mark, [x at the box's middle row, slant], lowest ink first.
function _cuts(mask, box, p) {
  const [y0, x0, y1, x1] = box, W = mask.w, w = x1 - x0, mid = (y0 + y1 - 1) / 2;
  const ys = [], xs = [];
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (mask.px[y * W + x]) { ys.push(y - y0); xs.push(x - x0); }
  const lo = Math.max(1, Math.ceil(p.split_margin * w)), hi = Math.min(w - 1, Math.floor((1 - p.split_margin) * w));
  const cand = [];
  for (const slant of p.split_slants) {
    const u = xs.map((x, k) => Math.floor(x - slant * (mid - (ys[k] + y0)) + 0.5)); // the slanted column of each ink pixel
    const umin = Math.min(...u), umax = Math.max(...u), col = new Int32Array(umax - umin + 1);
    for (const v of u) col[v - umin]++;
    for (let c = Math.max(lo, umin + 1); c <= Math.min(hi, umax - 1); c++) {
      const k = c - umin;
      if (col[k] <= col[k - 1] && col[k] <= col[k + 1]) cand.push([col[k], Math.abs(2 * c - w), x0 + c, slant]);
    }
  }
  const out = [];
  for (const [, , c, slant] of sortBy(cand, (v) => v)) {
    if (out.every(([o]) => Math.abs(c - o) > p.split_apart)) out.push([c, slant]); // near cuts cut alike: try others
  }
  return out;
}

// segment.py _piece: _input of a piece, or null when no pixel of it is darker than t.
function _piece(ink, mask, p) {
  try {
    return _input(ink, mask, p);
  } catch (e) {
    if (e instanceof ImageError) return null;
    throw e;
  }
}

// segment.py _height: the rows a mask spans, px (0 when empty). (mask.region: where its pixels lie.)
function _height(mask) {
  const [ry0, rx0, ry1, rx1] = mask.region ?? [0, 0, mask.h, mask.w];
  let top = -1, bottom = -1;
  for (let y = ry0; y < ry1; y++) {
    for (let x = rx0; x < rx1; x++) {
      if (mask.px[y * mask.w + x]) { if (top < 0) top = y; bottom = y; break; }
    }
  }
  return top < 0 ? 0 : bottom - top + 1;
}

// The box [y0, x0, y1, x1] of a mask's set pixels.
function maskBox(mask) {
  const [ry0, rx0, ry1, rx1] = mask.region ?? [0, 0, mask.h, mask.w];
  let y0 = mask.h, x0 = mask.w, y1 = 0, x1 = 0;
  for (let y = ry0; y < ry1; y++) {
    for (let x = rx0; x < rx1; x++) {
      if (mask.px[y * mask.w + x]) { y0 = Math.min(y0, y); y1 = Math.max(y1, y + 1); x0 = Math.min(x0, x); x1 = Math.max(x1, x + 1); }
    }
  }
  return [y0, x0, y1, x1];
}

// segment.py _split: a digit's mask -> {masks: the masks of its digits, left to right, score: the product of
// their confidences}; a half wider than split_deep x tall counts, when weighing a cut, with the confidence of its
// own best reading (one level deep). conf: the mask's confidence as one piece (a half's, known).
async function _split(ink, mask, box, tall, p, classify, conf = null, deep = true) {
  const [y0, x0, y1, x1] = box, { h, w } = mask;
  const whole = _piece(ink, mask, p);
  if (whole === null) return { masks: [mask], score: 0 };
  if (x1 - x0 <= p.split_try * tall) return { masks: [mask], score: conf }; // (null at the top, where no one asks)
  const mid = (y0 + y1 - 1) / 2, pairs = [], inputs = [whole[0]];
  for (const [c, slant] of _cuts(mask, box, p)) {
    const left = new Uint8Array(h * w), right = new Uint8Array(h * w);
    for (let y = y0; y < y1; y++) { // the mask's pixels lie in its box
      for (let x = x0; x < x1; x++) {
        const i = y * w + x;
        if (!mask.px[i]) continue;
        if (x - slant * (mid - y) + 0.5 < c) left[i] = 1; else right[i] = 1;
      }
    }
    const halves = [{ h, w, px: left, region: box }, { h, w, px: right, region: box }];
    // Each half a whole digit's height (a 7's bar cut off its stem is none).
    if (halves.every((half) => _height(half) >= p.part_rel * tall)) {
      const a = _piece(ink, halves[0], p), b = _piece(ink, halves[1], p);
      if (a !== null && b !== null) {
        pairs.push(halves);
        inputs.push(a[0], b[0]);
        if (pairs.length === Math.trunc(p.split_tries)) break;
      }
    }
  }
  const probs = await classify(inputs), confs = probs.map((q) => Math.max(...q)); // the whole, then each cut's halves
  if (!pairs.length) return { masks: [mask], score: confs[0] };
  const halfConf = confs.slice(1);
  for (let k = 0; deep && k < pairs.length; k++) {
    for (let j = 0; j < 2; j++) {
      const half = pairs[k][j], hb = maskBox(half);
      if (hb[3] - hb[1] > p.split_deep * tall) { // read as it would be split, one level deep
        const read = await _split(ink, half, hb, tall, p, classify, halfConf[2 * k + j], false);
        halfConf[2 * k + j] = Math.max(halfConf[2 * k + j], read.score);
      }
    }
  }
  let best = 0, bestBoth = -Infinity;
  for (let k = 0; k < pairs.length; k++) {
    const both = halfConf[2 * k] * halfConf[2 * k + 1]; // float64, as numpy's product of float64
    if (both > bestBoth) { bestBoth = both; best = k; } // np.argmax: the first of equals
  }
  if (!_two(x1 - x0, tall, bestBoth, confs[0], p)) return { masks: [mask], score: confs[0] };
  const masks = [];
  let score = 1;
  for (let j = 0; j < 2; j++) {
    const half = pairs[best][j];
    const read = await _split(ink, half, maskBox(half), tall, p, classify, confs[1 + 2 * best + j], deep);
    masks.push(...read.masks);
    score *= read.score;
  }
  return { masks, score };
}

// np.rot90 of an image {h, w, px} by k = 1 (counterclockwise) or -1 (clockwise).
function rot90(a, k) {
  const { h, w, px } = a, out = new px.constructor(h * w);
  for (let i = 0; i < w; i++) {
    for (let j = 0; j < h; j++) out[i * h + j] = k === 1 ? px[j * w + (w - 1 - i)] : px[(h - 1 - j) * w + i];
  }
  return { h: w, w: h, px: out };
}

// segment.py _turn: the ink turned by k x 90 degrees counterclockwise.
function _turn(ink, k) {
  const rot = { t: ink.t, info: ink.info };
  for (const key of ["d", "d3", "paper", "desk"]) rot[key] = ink[key] === null ? null : rot90(ink[key], k);
  return rot;
}

// segment.py _unturn: a box in the ink turned by k (1 or -1) -> in the ink's own (H, W) pixels.
function _unturn(box, k, h, w) {
  const [y0, x0, y1, x1] = box;
  if (k === 1) return [x0, w - y1, x1, w - y0];
  if (k === -1) return [h - x1, y0, h - x0, y1];
  return box;
}

// segment.py _two: two digits, not one, by the width in digits' heights and the classifier's evidence.
function _two(w, tall, both, whole, p) {
  return w / tall + p.split_evidence * Math.log(Math.max(both, 1e-30) / Math.max(whole, 1e-30)) > p.split_at;
}

// The mask of the marks `members`.
function paintMarks(m, members, h, w) {
  const keep = new Uint8Array(m.n);
  for (const i of members) keep[i] = 1;
  return { ..._paint(m, keep, h, w), region: _box(members, m) };
}

// segment.py _join: a digit overlapping the one before it (by more than join_try x the narrower) makes one
// digit with it, unless the evidence says two.
async function _join(ink, m, line, tall, p, classify) {
  const out = line.length ? [[...line[0]]] : [], { h, w } = ink.d;
  for (const g of line.slice(1)) {
    const prev = out[out.length - 1], a = _box(prev, m), b = _box(g, m);
    // overlapping along the line by more than join_try x the narrower, or one above the other
    const over = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
    if (over > p.join_try * Math.min(a[3] - a[1], b[3] - b[1]) || (Math.min(a[2], b[2]) <= Math.max(a[0], b[0]) && over >= -p.part_gap * tall)) {
      const pieces = [prev.concat(g), prev, g].map((marks) => _piece(ink, paintMarks(m, marks, h, w), p));
      if (pieces.every((x) => x !== null)) {
        const conf = (await classify(pieces.map(([x]) => x))).map((q) => Math.max(...q)); // joined, before, this
        const width = Math.max(a[3], b[3]) - Math.min(a[1], b[1]);
        if (!_two(width, tall, Math.fround(conf[1] * conf[2]), conf[0], p)) { out[out.length - 1] = prev.concat(g); continue; }
      }
    }
    out.push([...g]);
  }
  return out;
}

// segment.py _digits: the digits of a number, per line: {input, box (working px), probs}.
async function _digits(ink, p, classify, marks = null) {
  const { m, ok, inside } = marks ?? _plausible(ink.d3, ink.t, ink.desk, p);
  const found = _groups(m, ok, inside, p), { h, w } = ink.d, groups = [];
  for (const line of found.groups) groups.push(await _join(ink, m, line, found.tall, p, classify));
  // The digits' height again, now of the digits (a broken digit's pieces made it look small).
  const heights = groups.flat().map((g) => { const b = _box(g, m); return b[2] - b[0]; }), top = Math.max(...heights);
  const tall = heights.length ? median64(heights.filter((v) => v >= p.speck_rel * top)) : found.tall;
  const lines = [];
  for (const line of groups) {
    const masks = [];
    for (const g of line) {
      masks.push(...(await _split(ink, paintMarks(m, g, h, w), _box(g, m), tall, p, classify)).masks);
    }
    lines.push(masks.map((mask) => _piece(ink, mask, p)).filter((piece) => piece !== null));
  }
  const flat = lines.flat().map(([x]) => x), probs = flat.length ? await classify(flat) : [];
  let n = 0;
  return lines.map((line) => line.map(([x, box]) => ({ input: x, box, probs: probs[n++] })));
}

// segment.py _evidence: mean log-confidence over a number's digits (per line, as _digits gives them).
function _evidence(lines) {
  const digits = lines.flat();
  if (!digits.length) return -Infinity;
  let s = 0;
  for (const dg of digits) s += Math.log(Math.max(Math.max(...dg.probs), 1e-30));
  return s / digits.length;
}

// segment.py _number: steps 3-7 for a number -> {input, info (with the single digit's box), lines}; a
// number of several digits has each line read again, whole, by the line model where there is one (lines.js).
async function _number(g, inverted, p, unsure, frame, classify, lineModel = null) {
  const ink = _ink(g, inverted, p, frame);
  const marks = _plausible(ink.d3, ink.t, ink.desk, p);
  const [x, box] = _input(ink, _one(ink, p, unsure, marks), p); // the single digit, exactly as preprocess reads it
  ink.info.box = box;
  const column = _vertical(marks.m, marks.ok, p);
  const upright = column < 3 ? await _digits(ink, p, classify, marks) : null;
  const asUpright = async () => {
    const several = await _several(x, box, upright, p, classify);
    return { input: x, info: ink.info, lines: several ? await read_lines(ink, upright, p, lineModel) : [] };
  };
  // One or two marks in a column (touching digits of a turned number merged, or a digit upright) are tried
  // turned only when the classifier is unsure of them upright (the geometric mean of its confidences); so
  // are marks that share columns more often than lines (a number of two lines turned).
  const doubtful = column > 0 && column < 3 && _evidence(upright) < Math.log(p.turn_unsure);
  if (column < 3 && !doubtful && !_across(marks.m, marks.ok, p)) return asUpright();
  // A column of marks: the number turned 90 degrees. Read it turned both ways; the way is the one whose
  // digits the classifier is surer of (counterclockwise on a tie), each way cut and grouped afresh.
  let k = 1, lines = await _digits(_turn(ink, 1), p, classify);
  const other = await _digits(_turn(ink, -1), p, classify);
  if (_evidence(other) > _evidence(lines)) [k, lines] = [-1, other];
  // turned, one or two marks (or two lines) must read as 3 digits or more, and more surely than upright
  if (column < 3 && (lines.flat().length < 3 || _evidence(lines) <= _evidence(upright))) return asUpright();
  lines = await read_lines(_turn(ink, k), lines, p, lineModel);
  for (const line of lines) for (const dg of line) dg.box = _unturn(dg.box, k, g.h, g.w);
  return { input: x, info: ink.info, lines };
}

// segment.py _several: are the digits found more than the single digit's reading? Not when they all lie
// in its box and the evidence says one digit (a 7 and its bar apart); lines of two digits or more never are.
async function _several(x, box, lines, p, classify) {
  const digits = lines.flat(), [y0, x0, y1, x1] = box;
  const inside = digits.every(({ box: b }) => b[0] >= y0 && b[1] >= x0 && b[2] <= y1 && b[3] <= x1);
  if (digits.length < 2 || !inside || (lines.length > 1 && lines.every((line) => line.length > 1))) return true;
  if (x1 - x0 <= p.one_wide * (y1 - y0)) return false; // no wider than one digit may be
  // The digits' evidence as two digits would give it: their confidences' geometric mean, squared.
  let logs = 0;
  for (const dg of digits) logs += Math.log(Math.max(Math.max(...dg.probs), 1e-30));
  const both = Math.exp((2 * logs) / digits.length);
  return _two(x1 - x0, y1 - y0, both, Math.max(...(await classify([x]))[0]), p);
}

// segment.py _shifted: classify reading each input as the mean of its probabilities over the input and
// its copies moved px up, down, left and right (zeros moved in); px <= 0: classify itself.
function _shifted(classify, px, canvas) {
  if (px <= 0) return classify;
  return async (xs) => {
    const moved = [...xs];
    for (const [dy, dx] of [[px, 0], [-px, 0], [0, px], [0, -px]]) {
      for (const x of xs) {
        const y = new Float32Array(x.length);
        for (let r = Math.max(0, dy); r < Math.min(canvas, canvas + dy); r++) {
          for (let c = Math.max(0, dx); c < Math.min(canvas, canvas + dx); c++) y[r * canvas + c] = x[(r - dy) * canvas + c - dx];
        }
        moved.push(y);
      }
    }
    const probs = await classify(moved), n = xs.length, reads = moved.length / n;
    return xs.map((_, i) => {
      const q = new Float32Array(probs[i].length);
      for (let v = 0; v < reads; v++) for (let j = 0; j < q.length; j++) q[j] += probs[v * n + i][j];
      return q.map((s) => s / reads);
    });
  };
}

// segment.py _placed: a box [y0, x0, y1, x1] in the working pixels of a reading (its info: factor f, the
// [H, W] it read) -> [x0, y0, x1, y1] in the input's pixels, that reading's image lying at `at` [y, x].
export function _placed(box, info, at = [0, 0]) {
  const f = info.factor, [h, w] = info.shape, [ay, ax] = at, [y0, x0, y1, x1] = box;
  return [ax + x0 * f, ay + y0 * f, ax + Math.min(x1 * f, w), ay + Math.min(y1 * f, h)];
}

// segment.py _around: the crop [y0, x0, y1, x1] of an [H, W] input to read a number again: its digits'
// boxes ([x0, y0, x1, y1], input px) with second_look x a digit's size (px; by default their median
// height or width, the larger) around them; null when that is more than second_look_area of the input.
function _around(b, [h, w], p, size = null) {
  if (size === null) size = Math.max(median64(b.map((q) => q[3] - q[1])), median64(b.map((q) => q[2] - q[0])));
  const m = Math.trunc(p.second_look * size);
  const crop = [Math.max(Math.min(...b.map((q) => q[1])) - m, 0), Math.max(Math.min(...b.map((q) => q[0])) - m, 0),
    Math.min(Math.max(...b.map((q) => q[3])) + m, h), Math.min(Math.max(...b.map((q) => q[2])) + m, w)];
  return (crop[2] - crop[0]) * (crop[3] - crop[1]) <= p.second_look_area * h * w ? crop : null;
}

// The rows y0..y1-1, columns x0..x1-1 of a grey {h, w, px} (numpy's a[y0:y1, x0:x1]).
function _crop(a, [y0, x0, y1, x1]) {
  const px = new a.px.constructor((y1 - y0) * (x1 - x0));
  for (let y = y0; y < y1; y++) px.set(a.px.subarray(y * a.w + x0, y * a.w + x1), (y - y0) * (x1 - x0));
  return { h: y1 - y0, w: x1 - x0, px };
}

// preprocess.py _polar_grey's loop, for the number: each polarity in turn until one finds a digit.
async function _polar_number(a, p, classify, lineModel) {
  const { readings, gray, frame } = _polar_grey(a, p);
  for (let i = 0; i < readings.length; i++) {
    try {
      return await _number(gray(readings[i]), readings[i], p, readings.length > 1, frame, classify, lineModel);
    } catch (e) {
      if (!(e instanceof ImageError) || i === readings.length - 1) throw e;
    }
  }
}

// segment.py _column: do the digits of a reading (boxes [x0, y0, x1, y1], input px) stand in one column
// inside box (up to f px outside it)? A turned number merged into one tall mark reads so on its crop.
function _column(lines, box, f) {
  if (lines.length !== 1) return false;
  const b = lines[0].map((dg) => dg.box);
  if (!b.every((q) => q[0] >= box[0] - f && q[1] >= box[1] - f && q[2] <= box[2] + f && q[3] <= box[3] + f)) return false;
  const spread = (v) => Math.max(...v) - Math.min(...v);
  return spread(b.map((q) => q[1] + q[3])) > spread(b.map((q) => q[0] + q[2])); // centres spread down, not across
}

// segment.py read_number: any image -> {input: the single digit's, info, lines: the digits per line,
// boxes [x0, y0, x1, y1] in the input's pixels}, the number's pieces read with classify moved by
// read_shift px. An ImageError exactly when the single digit's reading raises one. A number of two
// digits or more is read again on a crop of the input around them (second_look x a digit's size more
// each way) when that is at most second_look_area of the input, and so is a single mark longer than
// one_wide x its width across (a number small in the photo, its digits merged); that reading is kept
// when it finds two digits or more (for a mark taller than wide, three in a column inside it). lineModel:
// {run, line} as lines.js takes it, or null to read digit by digit.
export async function read_number(image, p, classify, lineModel = null) {
  classify = _shifted(classify, Math.trunc(p.read_shift), p.canvas);
  const a = _grey(image, p.luma);
  const { input, info, lines: found } = await _polar_number(a, p, classify, lineModel);
  let lines = found.map((line) => line.map((dg) => ({ ...dg, box: _placed(dg.box, info) })));
  const digits = lines.flat();
  const one = _placed(info.box, info); // the single digit's box
  const w = one[2] - one[0], h = one[3] - one[1];
  let crop = null, need = 2; // need: the digits the crop's reading must find to be kept
  if (p.second_look > 0 && digits.length > 1) crop = _around(digits.map((dg) => dg.box), [a.h, a.w], p);
  else if (p.second_look > 0 && Math.max(w, h) > p.one_wide * Math.min(w, h)) {
    // One mark longer than one digit may be: a number small in a big photo, merged by the reduction.
    // Taller than wide (a turned number): 3 digits or more in a column inside it (a 1 or a 7 is as tall).
    crop = _around([one], [a.h, a.w], p, Math.min(w, h));
    need = w > h ? 2 : 3;
  }
  if (crop) {
    let again = [], near = null;
    try {
      ({ info: near, lines: again } = await _polar_number(_crop(a, crop), p, classify, lineModel));
    } catch (e) {
      if (!(e instanceof ImageError)) throw e; // nothing on the crop: keep the first reading
    }
    again = again.map((line) => line.map((dg) => ({ ...dg, box: _placed(dg.box, near, crop.slice(0, 2)) })));
    if (again.flat().length >= need && (need === 2 || _column(again, one, info.factor))) lines = again;
  }
  return { input, info, lines };
}
