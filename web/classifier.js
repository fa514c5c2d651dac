// The model's file, checked before onnxruntime-web opens it: the twin of export/reader/classifier.py
// (DigitClassifier.__init__: its metadata, its preprocessing numbers, its input).
//
// The page reads an ONNX file's metadata and input signature from its bytes, without onnxruntime.
// An .onnx file is one protobuf ModelProto (onnx/onnx.proto). We read only what the page needs:
//   ModelProto:  ir_version = 1 (varint), graph = 7, metadata_props = 14 (repeated)
//   StringStringEntryProto: key = 1, value = 2
//   GraphProto:  initializer = 5 (TensorProto, name = 8), input = 11 (ValueInfoProto)
//   ValueInfoProto: name = 1, type = 2;  TypeProto: tensor_type = 1
//   TypeProto.Tensor: elem_type = 1 (1 = float32), shape = 2;  TensorShapeProto: dim = 1
//   Dimension: dim_value = 1 (varint), dim_param = 2 (string)
// Doing it ourselves lets the page reject a file that is not ONNX, or takes another input, with
// a clear message before onnxruntime sees it.

import { argmax } from "./filters.js";
import { LINE } from "./lines.js";
import { DEFAULTS } from "./params.js";
import { _placed, read_number } from "./segment.js";

// classifier.py ModelError: the model file cannot be used; the message is the reason, one line.
export class ModelError extends Error {}

const text = new TextDecoder();

// Varint at `pos` -> [value, next position]. Numbers stay exact up to 2^53, plenty here.
function varint(bytes, pos) {
  let value = 0;
  for (let shift = 0; shift < 70; shift += 7) {
    if (pos >= bytes.length) throw new Error("truncated varint");
    const b = bytes[pos++];
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, pos];
  }
  throw new Error("varint too long");
}

// The fields of one message in bytes[start, end): {field, value} for varints, {field, bytes} for
// length-delimited ones (sub-messages, strings); fixed-width fields are skipped.
function fields(bytes, start = 0, end = bytes.length) {
  const out = [];
  let pos = start;
  while (pos < end) {
    let tag, value;
    [tag, pos] = varint(bytes, pos);
    const field = Math.floor(tag / 8), wire = tag % 8;
    if (field === 0) throw new Error("field number 0");
    if (wire === 0) {
      [value, pos] = varint(bytes, pos);
      out.push({ field, value });
    } else if (wire === 2) {
      [value, pos] = varint(bytes, pos);
      if (pos + value > end) throw new Error("length past the end");
      out.push({ field, bytes: bytes.subarray(pos, pos + value) });
      pos += value;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
    } else {
      throw new Error(`wire type ${wire}`);
    }
  }
  if (pos !== end) throw new Error("message ends mid-field");
  return out;
}

const sub = (list, n) => list.filter((f) => f.field === n && f.bytes);
const str = (list, n) => { const f = sub(list, n)[0]; return f ? text.decode(f.bytes) : undefined; };

// One graph input: {name, elemType, dims}; a dim is a number, a name ("batch") or null (unknown).
function valueInfo(bytes) {
  const info = fields(bytes);
  const tensor = sub(info, 2).flatMap((t) => sub(fields(t.bytes), 1))[0];
  const tf = tensor ? fields(tensor.bytes) : [];
  const elemType = tf.find((f) => f.field === 1 && f.value !== undefined)?.value;
  const shape = sub(tf, 2)[0];
  const dims = shape
    ? sub(fields(shape.bytes), 1).map((d) => {
        const df = fields(d.bytes);
        const v = df.find((f) => f.field === 1 && f.value !== undefined);
        return v ? v.value : str(df, 2) ?? null;
      })
    : null;
  return { name: str(info, 1), elemType, dims };
}

// bytes of an .onnx file -> {irVersion, metadata: {key: string}, inputs: [...]}; ModelError if it is not ONNX.
export function readModel(bytes) {
  let top;
  try {
    top = fields(bytes);
  } catch (e) {
    throw new ModelError(`not an ONNX model (${e.message})`);
  }
  const ir = top.find((f) => f.field === 1 && f.value !== undefined);
  const graph = sub(top, 7)[0];
  if (!ir || !graph) throw new ModelError("not an ONNX model (no ir_version or graph)");
  try {
    const metadata = {};
    for (const entry of sub(top, 14)) {
      const kv = fields(entry.bytes);
      metadata[str(kv, 1) ?? ""] = str(kv, 2) ?? "";
    }
    const g = fields(graph.bytes);
    const initializers = new Set(sub(g, 5).map((t) => str(fields(t.bytes), 8)));
    const inputs = sub(g, 11).map((v) => valueInfo(v.bytes)).filter((v) => !initializers.has(v.name));
    return { irVersion: ir.value, metadata, inputs };
  } catch (e) {
    throw new ModelError(`not an ONNX model (${e.message})`);
  }
}

// classifier.py _meta: a metadata value is JSON text; fall back to `fallback` when it is missing, not
// JSON, or of another type than `fallback` (any type when `fallback` is null).
export function meta(metadata, key, fallback) {
  try {
    const v = JSON.parse(metadata[key]);
    const kind = (o) => (Array.isArray(o) ? "array" : o === null ? "null" : typeof o);
    return fallback === null || kind(v) === kind(fallback) ? v : fallback;
  } catch {
    return fallback;
  }
}

// classifier.py _same_kind: a metadata value may replace a default of the same kind.
function _same_kind(value, fallback) {
  const number = (v) => typeof v === "number" && Number.isFinite(v);
  if (Array.isArray(fallback)) return Array.isArray(value) && value.length === fallback.length && value.every(number);
  return number(value);
}

// classifier.py DigitClassifier.__init__: the model's own preprocessing numbers where it has them
// (older exports hold only some, plus descriptive strings), the defaults for the rest.
export function preprocessingParams(prep) {
  const out = {};
  for (const [k, v] of Object.entries(DEFAULTS.preprocessing)) out[k] = _same_kind(prep?.[k], v) ? prep[k] : v;
  return out;
}

// classifier.py DigitClassifier.__init__, its input check: the input the page will feed, checked against
// the contract, float32 (batch, 1, canvas, canvas).
export function checkInput(model, canvas) {
  const wanted = meta(model.metadata, "input", {}).name;
  const input = model.inputs.find((i) => i.name === wanted) ?? model.inputs[0];
  if (!input) throw new ModelError("the model has no input");
  const dims = input.dims ?? [];
  const ok = input.elemType === 1 && dims.length === 4 && dims[1] === 1 && dims[2] === canvas && dims[3] === canvas;
  if (!ok) {
    const type = { 1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 11: "float64" }[input.elemType] ?? `type ${input.elemType}`;
    const shape = dims.length ? `(${dims.map((d) => d ?? "?").join(", ")})` : "an unknown shape";
    throw new ModelError(`the model takes ${type} ${shape}, not float32 (batch, 1, ${canvas}, ${canvas})`);
  }
  return input.name;
}

// classifier.py DigitClassifier._line_model: a line model (readModel's result for its bytes, and its
// onnxruntime-web session; Tensor: ort.Tensor) -> {run, line} as lines.js takes it: its metadata's `line`
// numbers, LINE's for the rest. A ModelError when it is no line reader.
export function lineModel(info, session, Tensor) {
  const got = meta(info.metadata, "line", {}), line = {};
  for (const [k, v] of Object.entries(LINE)) line[k] = _same_kind(got?.[k], v) ? got[k] : v;
  const input = info.inputs[0], dims = input?.dims ?? [];
  if (meta(info.metadata, "task", "") !== "lines" || !session.outputNames.includes("probs") || dims.length !== 4 || dims[2] !== line.height) {
    throw new ModelError("not a line reader (write one with `python -m export --lines`)");
  }
  const run = async ({ h, w, px }) => (await session.run({ [input.name]: new Tensor("float32", px, [1, 1, h, w]) }, ["probs"])).probs.data;
  return { run, line };
}

// classifier.py DigitClassifier.read: an image -> the whole number on it: {number (lines joined by one
// space), digits (reading order: {digit, confidence, probs, box [x0, y0, x1, y1] in the image's pixels,
// input}), and the single most prominent digit as preprocess reads it: digit, confidence, probs, input}.
// `classify`: async, Float32Array(canvas * canvas)[] -> probabilities (classes)[] each. lineReader: the
// line model as lineModel() makes it, or null.
export async function readNumber(image, params, labels, classify, lineReader = null) {
  const { input, info, lines: found } = await read_number(image, params, classify, lineReader);
  const probs = (await classify([input]))[0], digit = argmax(probs); // the single digit, as predict() reads it
  // One digit: the single digit's own reading (its parts, its box).
  const lines = found.reduce((n, line) => n + line.length, 0) <= 1 ? [[{ input, box: _placed(info.box, info), probs }]] : found;
  const digits = [], words = [];
  for (const line of lines) {
    let word = "";
    for (const dg of line) {
      const k = argmax(dg.probs);
      digits.push({ digit: k, confidence: dg.probs[k], probs: dg.probs, box: dg.box, input: dg.input });
      word += labels[k] ?? String(k);
    }
    words.push(word);
  }
  return { number: words.join(" "), digits, digit, confidence: probs[digit], probs, input };
}
