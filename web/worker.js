// The camera's reader, off the page's thread: one video frame in, its reading out.
//
// camera.js starts this module Worker, hands it the model (the same bytes, preprocessing numbers and
// input the page opened: app.js checked them) and then one frame at a time, as an ImageBitmap of at most
// CAMERA_SIDE px on its longer side. The worker opens its own onnxruntime-web session (wasm, one thread),
// so the page's controls stay responsive while a frame is read (~tens of ms a frame).
//
// Messages in (each with an id, which its answer carries):
//   {type: "model", bytes, params, labels, inputName, outputName, lineBytes}
//                                                          ->  {type: "ready"} | {type: "error", message}
//                                                              (lineBytes: the line model's, or null)
//   {type: "frame", bitmap}                                ->  {type: "reading", reading, ms}
//   {type: "image", frame}                                 ->  {type: "image", image}: that frame's ImageData
//                                                              (one of the last KEEP read; null if older)
// The reading comes from readFrame alone: the one place that decides what a frame says.

import * as ort from "./vendor/ort.wasm.min.mjs";
import { ImageError } from "./image.js";
import { lineModel, readModel, readNumber } from "./classifier.js";

ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href;
ort.env.logLevel = "error";

let model = null; // {session, inputName, outputName, params, labels, canvas, lines: lines.js's line model or null}
let ctx = null; // a 2D context to turn bitmaps into pixels, resized to each frame
const WARM_UP = 3; // frames read when a model opens, before the camera's first
const KEEP = 2; // frames kept after their reading, for a freeze (the page may freeze the one before the last)
const kept = new Map(); // frame id -> its ImageData

// One frame's ImageData (RGBA) -> {digit | null, number | null, confidence, box | null, digits, probs, input}:
// the number reader (classifier.js readNumber, the twin of classifier.py's read(): the same steps as a
// dropped file's). number: the digits read, lines joined by a space ("7" for one digit); digit: the most
// prominent single digit; confidence: the least sure digit's; box: [x0, y0, x1, y1] around all digits, in
// the frame's pixels; digits: [{digit, confidence, box}] in reading order. A frame with no digit (blank
// paper, the desk) reads {digit: null, number: null, confidence: 0, box: null, digits: []}.
async function readFrame(image) {
  let r;
  try {
    r = await readNumber(image, model.params, model.labels, classifyAll, model.lines);
  } catch (e) {
    if (e instanceof ImageError) return { digit: null, number: null, confidence: 0, box: null, digits: [], probs: null, input: null };
    throw e;
  }
  const digits = r.digits.map(({ digit, confidence, box }) => ({ digit, confidence, box }));
  const box = [0, 1, 2, 3].map((k) => (k < 2 ? Math.min : Math.max)(...digits.map((d) => d.box[k])));
  const confidence = Math.min(...digits.map((d) => d.confidence));
  return { digit: r.digit, number: r.number, confidence, box, digits, probs: r.probs, input: r.input };
}

// Preprocessed inputs, Float32Array(canvas * canvas)[] -> their probabilities, one session run.
async function classifyAll(inputs) {
  const c = model.canvas, batch = new Float32Array(inputs.length * c * c);
  inputs.forEach((x, i) => batch.set(x, i * c * c));
  const feeds = { [model.inputName]: new ort.Tensor("float32", batch, [inputs.length, 1, c, c]) };
  const scores = (await model.session.run(feeds, [model.outputName]))[model.outputName].data;
  const k = scores.length / inputs.length;
  return inputs.map((_, i) => softmax(Array.from(scores.subarray(i * k, (i + 1) * k))));
}

// Scores -> probabilities: the model's `probs` as they are, other outputs through a softmax.
function softmax(scores) {
  if (model.outputName === "probs") return scores;
  const top = Math.max(...scores), e = scores.map((v) => Math.exp(v - top)), sum = e.reduce((a, b) => a + b);
  return e.map((v) => v / sum);
}

function pixels(bitmap) {
  const { width: w, height: h } = bitmap;
  if (!ctx || ctx.canvas.width !== w || ctx.canvas.height !== h) {
    ctx = new OffscreenCanvas(w, h).getContext("2d", { willReadFrequently: true });
  }
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, w, h);
}

async function openModel({ bytes, params, labels, inputName, outputName, lineBytes }) {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const canvas = Math.trunc(params.canvas);
  let lines = null; // the page checked the line model already
  if (lineBytes) {
    const lineSession = await ort.InferenceSession.create(lineBytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    lines = lineModel(readModel(lineBytes), lineSession, ort.Tensor);
  }
  model = { session, inputName, outputName, params, labels, canvas, lines };
  await classifyAll([new Float32Array(canvas * canvas)]); // warm-up: the first run compiles and allocates
  // The preprocessing's warm-up too: its first frames run 3-5x slower, until the JavaScript engine has
  // compiled its loops. A dark bar on light paper, a camera frame's size, read a few times.
  const warm = new OffscreenCanvas(640, 480).getContext("2d", { willReadFrequently: true });
  warm.fillStyle = "#ddd";
  warm.fillRect(0, 0, 640, 480);
  warm.fillStyle = "#222";
  warm.fillRect(300, 160, 24, 160);
  const image = warm.getImageData(0, 0, 640, 480);
  for (let i = 0; i < WARM_UP; i++) await readFrame(image);
}

self.onmessage = async ({ data }) => {
  try {
    if (data.type === "model") {
      model = null;
      await openModel(data);
      self.postMessage({ type: "ready", id: data.id });
    } else if (data.type === "frame") {
      const t0 = performance.now(), image = pixels(data.bitmap);
      const reading = await readFrame(image);
      kept.set(data.id, image);
      for (const id of kept.keys()) if (kept.size > KEEP) kept.delete(id);
      self.postMessage({ type: "reading", id: data.id, reading, ms: performance.now() - t0 });
    } else if (data.type === "image") {
      self.postMessage({ type: "image", id: data.id, image: kept.get(data.frame) ?? null });
    }
  } catch (e) {
    self.postMessage({ type: "error", id: data.id, message: String(e?.message ?? e).split("\n")[0].slice(0, 200) });
  }
};
