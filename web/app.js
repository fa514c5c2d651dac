// The demo page: draw a digit or drop photos of digits and numbers; the exported ONNX model reads them with
// onnxruntime-web.
//
// Served by `python -m export.web` (or any static host after `--out DIR`), which lists the models
// in models.json. Everything runs here: decoding, preprocessing (preprocess.js and the modules it
// imports, twins of export/reader/'s modules of the same names), the model's checks (classifier.js) and
// inference (WebAssembly, one thread: no SharedArrayBuffer, so no cross-origin isolation headers are needed).
//
// For tests and scripts: window.lastResults (one {name, digit, probs, input} per classified input,
// in input order; for files also {number, digits}, as classifier.py's read()) and
// window.mnist = {ready, preprocess, classify, read, loadModel, timings, ...}.

import * as ort from "./vendor/ort.wasm.min.mjs";
import { ModelError, checkInput, lineModel, meta, preprocessingParams, readModel, readNumber } from "./classifier.js";
import { initCamera } from "./camera.js";
import { decode, thumbnail } from "./decode.js";
import { ImageError } from "./image.js";
import { BATCH, DEFAULTS } from "./params.js";
import { showNumber } from "./number.js";
import { preprocess } from "./preprocess.js";

ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href; // the .mjs/.wasm pair beside ort
ort.env.logLevel = "error";

const INK_WIDTH = 24; // stroke width in canvas pixels: ~2 px of 28, like MNIST's pen

const $ = (id) => document.getElementById(id);
const pad = $("pad"), padCtx = pad.getContext("2d", { willReadFrequently: true });
const seenCtx = $("seen").getContext("2d");
const bars = [...document.querySelectorAll(".bars li")];

const timings = {}; // ms since navigation start: modelReady, firstPrediction
let manifest = { models: [], sidecar: null, lines: null };
let sidecar = null;
let lines = null; // the line model, when one is served: {bytes, model: {run, line}} (lines.js reads with it)
let model = null; // {variant, session, inputName, outputName, labels, fit, canvas, facts}
let loading = null; // the promise of the model being loaded
let source = "canvas"; // what the current prediction is of: "canvas" or "files"
let lastFiles = []; // the last File objects given, to classify again on a model switch

window.lastResults = [];

// ---- status line ----------------------------------------------------------------------------

function setStatus(text, kind = "info") {
  const s = $("status");
  s.textContent = text;
  s.className = kind;
}

// ---- the model ------------------------------------------------------------------------------

async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) return null; // only in secure contexts (https, localhost)
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Fetch, check and open one model of the manifest. Throws ModelError with a one-line reason.
async function openModel(variant) {
  const entry = manifest.models.find((m) => m.variant === variant);
  if (!entry) throw new ModelError(`no ${variant} model is served`);
  let response;
  try {
    response = await fetch(entry.file, { cache: "no-cache" });
  } catch (e) {
    throw new ModelError(`model ${entry.file} could not be fetched (${e.message})`);
  }
  if (!response.ok) {
    const why = response.status === 404 ? "not found" : `HTTP ${response.status} ${response.statusText}`;
    throw new ModelError(`model ${entry.file} could not be loaded: ${why}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  let info, inputName, fit, canvas, params;
  try {
    info = readModel(bytes);
    // Like classifier.py: every number of the metadata's `preprocessing` entry, its defaults for the rest.
    params = preprocessingParams(meta(info.metadata, "preprocessing", {}));
    [fit, canvas] = [Math.trunc(params.fit), Math.trunc(params.canvas)];
    inputName = checkInput(info, canvas);
  } catch (e) {
    throw new ModelError(`model ${entry.file}: ${e.message}`);
  }
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  } catch (e) {
    throw new ModelError(`model ${entry.file} cannot be loaded by onnxruntime (${String(e.message ?? e).split("\n")[0].slice(0, 200)})`);
  }
  const outputName = session.outputNames.includes("probs") ? "probs" : session.outputNames[0];
  const labels = meta(info.metadata, "labels", DEFAULTS.labels).map(String);
  const m = { variant, file: entry.file, bytes, session, inputName, outputName, labels, fit, canvas, params, metadata: info.metadata, lines };
  await run(m, [new Float32Array(canvas * canvas)]); // warm-up: the first run compiles and allocates
  m.facts = await facts(m);
  return m;
}

// Fetch, check and open the line model (classifier.py reads with the one beside the model; the server lists
// it in models.json). Throws ModelError with a one-line reason.
async function openLines(file) {
  const response = await fetch(file, { cache: "no-cache" }).catch((e) => { throw new ModelError(`line model ${file} could not be fetched (${e.message})`); });
  if (!response.ok) throw new ModelError(`line model ${file} could not be loaded (HTTP ${response.status})`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  try {
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    return { bytes, model: lineModel(readModel(bytes), session, ort.Tensor) };
  } catch (e) {
    throw new ModelError(`line model ${file}: ${String(e.message ?? e).split("\n")[0].slice(0, 200)}`);
  }
}

// What the page shows about the model: from its metadata, the file, and the sidecar JSON.
async function facts(m) {
  const verification = meta(m.metadata, "verification", {}); // INT8 files hold their own figures
  const int8 = m.variant === "int8";
  const accuracy = int8 ? verification?.optimized?.accuracy ?? meta(m.metadata, "test_acc", null) : meta(m.metadata, "test_acc", null);
  const side = int8 ? sidecar?.int8 : sidecar;
  const computed = await sha256Hex(m.bytes);
  const sha = computed ?? side?.sha256 ?? null;
  let shaNote = computed ? "computed here" : side?.sha256 ? "from the sidecar JSON" : "";
  if (computed && side?.sha256) shaNote = computed === side.sha256 ? "computed here, matches the sidecar JSON" : "computed here, DIFFERS from the sidecar JSON";
  return [
    ["file", `${m.file.split("/").pop()} (${m.variant === "int8" ? "INT8" : "fp32"})`],
    ["test accuracy", accuracy == null ? "unknown" : `${(accuracy * 100).toFixed(2)}% (10,000 MNIST test images)`],
    ["opset", String(meta(m.metadata, "opset", null) ?? "unknown")],
    ["size", `${(m.bytes.length / 1024).toFixed(0)} KiB`],
    ["sha256", sha ? `${sha}${shaNote ? ` (${shaNote})` : ""}` : "unavailable"],
    ["runtime", `onnxruntime-web ${ort.env.versions?.web ?? ""}, wasm, ${ort.env.wasm.numThreads} thread`],
    ["input", `${m.inputName}: float32 (batch, 1, ${m.canvas}, ${m.canvas}) in [0, 1]`],
    ["numbers", m.lines ? `each line read whole by ${manifest.lines.split("/").pop()} (${(m.lines.bytes.length / 1024).toFixed(0)} KiB)`
      : "each digit read alone (no line model served)"],
  ];
}

function showFacts() {
  const dl = $("facts");
  dl.replaceChildren();
  for (const [k, v] of model?.facts ?? []) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    if (k === "sha256") dd.className = "hash";
    dl.append(dt, dd);
  }
}

async function loadModel(variant) {
  setStatus(`Loading the ${variant === "int8" ? "INT8" : "fp32"} model…`);
  // `loading` never rejects: it settles once `model` is set (or null), for whoever waits on it.
  loading = openModel(variant).then((m) => (model = m), (e) => { model = null; return e; });
  const got = await loading;
  if (!model) {
    showFacts();
    clearResult();
    setStatus(got instanceof ModelError ? got.message : `model failed: ${got?.message ?? got}`, "error");
    throw got;
  }
  for (const r of document.querySelectorAll("input[name=variant]")) r.checked = r.value === variant;
  showFacts();
  timings.modelReady ??= performance.now();
  setStatus("Ready: draw a digit, or choose images.");
  await reclassify();
  return model;
}

// ---- inference ------------------------------------------------------------------------------

// Preprocessed inputs (Float32Array(canvas * canvas) each) -> [{digit, probs}], in chunks of BATCH.
async function run(m, inputs) {
  const out = [], size = m.canvas * m.canvas;
  for (let start = 0; start < inputs.length; start += BATCH) {
    const chunk = inputs.slice(start, start + BATCH);
    const data = new Float32Array(chunk.length * size);
    chunk.forEach((x, i) => data.set(x, i * size));
    const feeds = { [m.inputName]: new ort.Tensor("float32", data, [chunk.length, 1, m.canvas, m.canvas]) };
    const result = await m.session.run(feeds, [m.outputName]);
    const scores = result[m.outputName].data; // (n, classes)
    const classes = scores.length / chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      let probs = Array.from(scores.subarray(i * classes, (i + 1) * classes));
      if (m.outputName !== "probs") { // logits: softmax them
        const top = Math.max(...probs), e = probs.map((v) => Math.exp(v - top)), sum = e.reduce((a, b) => a + b);
        probs = e.map((v) => v / sum);
      }
      out.push({ digit: probs.indexOf(Math.max(...probs)), probs });
    }
  }
  return out;
}

async function classify(inputs) {
  if (!model) await loading;
  const t0 = performance.now();
  const results = await run(model, inputs);
  const ms = performance.now() - t0;
  timings.firstPrediction ??= performance.now();
  return { results, ms };
}

// classifier.py read on the page's model (classifier.js readNumber); `ms`: the inference time it took.
async function read(image) {
  if (!model) await loading;
  let ms = 0;
  const probsOf = async (inputs) => { const r = await classify(inputs); ms += r.ms; return r.results.map((q) => q.probs); };
  return { ...(await readNumber(image, model.params, model.labels, probsOf, model.lines?.model ?? null)), ms };
}

// ---- showing a result -----------------------------------------------------------------------

function clearResult() {
  $("prediction").textContent = "";
  $("confidence").textContent = "";
  $("timing").textContent = "";
  $("source").textContent = "";
  for (const li of bars) {
    li.dataset.value = "0";
    li.classList.remove("top");
    li.querySelector(".bar span").style.width = "0";
    li.querySelector(".pct").textContent = "";
  }
  seenCtx.clearRect(0, 0, 28, 28);
}

function showResult(r, ms, label) {
  $("prediction").textContent = model.labels[r.digit] ?? String(r.digit);
  $("confidence").textContent = `${(r.probs[r.digit] * 100).toFixed(1)}% sure`;
  $("timing").textContent = ms == null ? "" : `inference ${ms.toFixed(2)} ms (${model.variant === "int8" ? "INT8" : "fp32"})`;
  $("source").textContent = label ? `— ${label}` : "";
  bars.forEach((li, d) => {
    const p = r.probs[d] ?? 0;
    li.dataset.value = String(p);
    li.classList.toggle("top", d === r.digit);
    li.querySelector(".bar span").style.width = `${(p * 100).toFixed(2)}%`;
    li.querySelector(".pct").textContent = `${(p * 100).toFixed(1)}%`;
  });
  drawSeen(seenCtx, r.input, model.canvas);
}

// A preprocessed input, light on dark in [0, 1], into a canvas x canvas 2D context.
function drawSeen(ctx, input, size) {
  const img = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const v = Math.round(input[i] * 255);
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

// ---- the drawing pad ------------------------------------------------------------------------

const strokes = []; // each an array of [x, y] in canvas pixels
let drawing = null; // the stroke under the pointer
let frame = 0; // pending requestAnimationFrame, so predictions follow the pen at most once a frame
let busy = false, again = false;
let updates = 0; // finished classifications (of the pad or of files), for scripts waiting on one

function paintAll() {
  padCtx.fillStyle = "#fff";
  padCtx.fillRect(0, 0, pad.width, pad.height);
  for (const s of strokes) paintStroke(s, 0);
}

function paintStroke(s, from) {
  padCtx.strokeStyle = "#111";
  padCtx.fillStyle = "#111";
  padCtx.lineWidth = INK_WIDTH;
  padCtx.lineCap = padCtx.lineJoin = "round";
  if (s.length === 1) { // a dot
    padCtx.beginPath();
    padCtx.arc(s[0][0], s[0][1], INK_WIDTH / 2, 0, 2 * Math.PI);
    padCtx.fill();
    return;
  }
  padCtx.beginPath();
  padCtx.moveTo(...s[Math.max(from - 1, 0)]);
  for (let i = Math.max(from, 1); i < s.length; i++) padCtx.lineTo(...s[i]);
  padCtx.stroke();
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
}

pad.addEventListener("pointerdown", (e) => {
  if (e.button !== 0) return;
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  drawing = [point(e)];
  strokes.push(drawing);
  paintStroke(drawing, 0);
  schedule();
});

pad.addEventListener("pointermove", (e) => {
  if (!drawing || !pad.hasPointerCapture(e.pointerId)) return;
  const from = drawing.length;
  for (const c of e.getCoalescedEvents?.() ?? [e]) drawing.push(point(c)); // every sample, not one a frame
  paintStroke(drawing, from);
  schedule();
});

function endStroke(e) {
  if (!drawing) return;
  drawing = null;
  if (pad.hasPointerCapture(e.pointerId)) pad.releasePointerCapture(e.pointerId);
  schedule();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function schedule() {
  source = "canvas";
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; classifyPad(); });
}

async function classifyPad() {
  if (busy) { again = true; return; } // one run at a time; the latest drawing wins
  busy = true;
  try {
    if (!strokes.length) {
      clearResult();
      window.lastResults = [];
      setStatus("Blank canvas: draw a digit.");
      return;
    }
    if (!model) { await loading; if (!model) return; }
    const image = padCtx.getImageData(0, 0, pad.width, pad.height);
    let input;
    try {
      input = preprocess(image, model.params);
    } catch (e) {
      if (!(e instanceof ImageError)) throw e;
      clearResult();
      window.lastResults = [];
      setStatus("Blank canvas: draw a digit.");
      return;
    }
    const { results, ms } = await classify([input]);
    const r = { name: "canvas", ...results[0], input };
    window.lastResults = [r];
    showResult(r, ms, "your drawing");
    setStatus("");
  } catch (e) {
    setStatus(`Could not classify the drawing: ${e.message ?? e}`, "error");
  } finally {
    busy = false;
    updates++;
    if (again) { again = false; schedule(); }
  }
}

$("clear").addEventListener("click", () => { strokes.length = 0; paintAll(); schedule(); });
$("undo").addEventListener("click", () => { strokes.pop(); paintAll(); schedule(); });

// ---- files ----------------------------------------------------------------------------------

async function handleFiles(files) {
  source = "files";
  lastFiles = files;
  try {
    await classifyFiles(files);
  } finally {
    updates++;
  }
}

// Decode and read one file at a time (a photo's pixels are dropped once it is read, a small copy kept to
// show the boxes on). Failures are listed, the rest still read.
async function classifyFiles(files) {
  setStatus(`Reading ${files.length} file${files.length === 1 ? "" : "s"}…`);
  if (!model) { await loading; if (!model) return; }
  const failed = [], good = [];
  let ms = 0;
  for (const file of files) {
    try {
      const image = await decode(file), r = await read(image);
      ms += r.ms;
      delete r.ms;
      good.push({ name: file.name, ...r, thumb: thumbnail(image), size: [image.width, image.height] });
    } catch (e) {
      failed.push({ name: file.name, error: e instanceof ImageError ? e.message : `cannot read (${e.message ?? e})` });
    }
  }
  // As classifier.py's read() (its digits without their inputs), plus the single digit's input.
  window.lastResults = good.map(({ thumb, size, ...r }) => ({ ...r, digits: r.digits.map(({ input, ...dg }) => dg) }));
  showFileList(good, failed, ms);
  if (good.length) pick(good[0], ms / good.length);
  else { clearResult(); $("number-view").hidden = true; }
  if (failed.length === files.length) {
    setStatus(`No file could be classified: ${failed.map((f) => `${f.name}: ${f.error}`).join("; ")}`, "error");
  } else if (failed.length) {
    setStatus(`${failed.length} of ${files.length} files could not be classified: ${failed.map((f) => `${f.name}: ${f.error}`).join("; ")}`, "error");
  } else {
    setStatus("");
  }
}

// One file's reading: its number over its picture, each digit's box to pick; the first digit's
// probabilities (or the single digit's) in the result card.
function pick(r, ms) {
  showNumber($("number-view"), r, model.labels, (dg) => showResult(dg, ms, `${r.name}, digit ${r.digits.indexOf(dg) + 1} of ${r.digits.length}`));
  showResult(r, ms, r.name);
}

function showFileList(results, failed, ms) {
  const list = $("file-results");
  list.replaceChildren();
  $("files-card").hidden = false;
  results.forEach((r, i) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.title = `show the probabilities for ${r.name}`;
    const c = document.createElement("canvas");
    c.width = c.height = model.canvas;
    drawSeen(c.getContext("2d"), r.input, model.canvas);
    const digit = document.createElement("strong");
    digit.textContent = r.number;
    const name = document.createElement("span");
    name.className = "name";
    const least = Math.min(...r.digits.map((dg) => dg.confidence)); // the number is as sure as its least sure digit
    name.textContent = `${r.name} · ${(least * 100).toFixed(1)}%`;
    button.append(c, digit, name);
    button.addEventListener("click", () => pick(r, ms / results.length));
    li.append(button);
    list.append(li);
  });
  for (const f of failed) {
    const li = document.createElement("li");
    li.className = "failed";
    li.textContent = `${f.name}: ${f.error}`;
    list.append(li);
  }
}

$("files").addEventListener("change", (e) => { if (e.target.files.length) handleFiles([...e.target.files]); });
$("photo").addEventListener("change", (e) => { if (e.target.files.length) handleFiles([...e.target.files]); });
const drop = $("drop");
for (const type of ["dragenter", "dragover"]) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files.length) handleFiles([...e.dataTransfer.files]); });
// A file dropped anywhere else must not navigate away from the page.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

// ---- model switch, start --------------------------------------------------------------------

async function reclassify() {
  if (source === "files" && lastFiles.length) await handleFiles(lastFiles);
  else if (strokes.length) schedule();
}

for (const radio of document.querySelectorAll("input[name=variant]")) {
  radio.addEventListener("change", () => { if (radio.checked) loadModel(radio.value).catch(() => {}); });
}

async function start() {
  paintAll();
  const r = await fetch("models.json", { cache: "no-cache" }).catch((e) => { throw new ModelError(`models.json could not be fetched (${e.message})`); });
  if (!r.ok) throw new ModelError(`models.json could not be loaded (HTTP ${r.status}): serve the page with \`python -m export.web\``);
  manifest = await r.json();
  if (manifest.sidecar) sidecar = await fetch(manifest.sidecar, { cache: "no-cache" }).then((s) => (s.ok ? s.json() : null)).catch(() => null);
  if (manifest.lines) lines = await openLines(manifest.lines);
  const variants = new Set(manifest.models.map((m) => m.variant));
  for (const radio of document.querySelectorAll("input[name=variant]")) radio.disabled = !variants.has(radio.value);
  if (!manifest.models.length) throw new ModelError("no model is served");
  return loadModel(manifest.models[0].variant);
}

const ready = start().catch((e) => {
  setStatus(e instanceof ModelError ? e.message : `the page failed to start: ${e.message ?? e}`, "error");
  return null;
});
loading = ready;

// Camera mode (camera.js): it reads frames in its own worker, and hands a frozen frame over as a file.
initCamera({ model: async () => { if (!model) await loading; return model; }, onFreeze: (file) => handleFiles([file]), setStatus });

window.mnist = {
  ready, // resolves to the model (or null if it failed to load)
  timings, // {modelReady, firstPrediction}: ms since navigation start
  preprocess: (imageData) => preprocess(imageData, model?.params),
  classify: async (input) => (await classify([input])).results[0], // Float32Array(784) -> {digit, probs}
  classifyMany: async (inputs) => (await classify(inputs)), // [Float32Array(784)] -> {results, ms}
  read: async (imageData) => { const { ms, ...r } = await read(imageData); return r; }, // -> classifier.py's read()
  loadModel,
  get updates() { return updates; }, // increases after each classification of the pad or of files
  // Resolves once no drawing is waiting to be classified.
  settled: () => new Promise((resolve) => {
    const check = () => (frame || busy || again ? requestAnimationFrame(check) : resolve());
    requestAnimationFrame(check);
  }),
  get model() { return model && { variant: model.variant, file: model.file, labels: model.labels, fit: model.fit, canvas: model.canvas, params: model.params }; },
  // Benchmark: per-call session.run times in ms for `inputs`, one at a time, after `warmup` calls.
  async time(inputs, warmup = 10) {
    const m = model, times = [];
    for (let i = 0; i < warmup; i++) await run(m, [inputs[i % inputs.length]]);
    for (const x of inputs) { const t0 = performance.now(); await run(m, [x]); times.push(performance.now() - t0); }
    return times;
  },
};
