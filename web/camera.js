// Camera mode: read digits live from the device's (rear) camera, in the page.
//
// The page's thread only moves frames: each new video frame, when the reader is free, becomes an
// ImageBitmap of at most CAMERA_SIDE px on its longer side, handed to worker.js, which reads it with
// the same steps as a dropped file (the number reader of classifier.js, in its own onnxruntime-web
// session). The box of what it read (and of each digit of a number) is drawn over the video; the shown
// reading, the whole number, is steady (Steady below). A tap on the picture, or Space, freezes the frame
// that was read and hands it to the page as a PNG file, so its result lands where a dropped file's does;
// another tap or Space goes on reading.
//
// Browsers give getUserMedia to secure contexts only (https, or http on localhost): a phone opening
// http://LAN-ADDRESS gets no camera, and the status line says so (see whyNoCamera).
//
// For tests: window.cameraReadings, one {t_ms, digit, number, confidence, shown, ms, worker_ms} per
// analysed frame (t_ms: the frame's media time, ms after the first frame the camera gave; for a video file
// played as the camera, its position in the file; shown: the steady reading after this frame; ms: the time
// to read it); data-testid="camera-reading", the steady reading as text; window.camera = {start, stop,
// toggleFreeze, frozen, active, fps}.

export const CAMERA_SIDE = 640; // px: frames are read at most this long on their longer side (as photos' working images, 320-639 px, need)
const HOLD = 3; // analysed frames a new reading must hold before it is shown (~0.3 s at 10 frames/s)
const CLEAR = 2; // analysed blank frames before a shown reading goes
const RATE_WINDOW = 2000; // ms: the frame rate shown is over the frames of the last 2 s
const KEEP_READINGS = 10_000; // window.cameraReadings keeps the last 10,000 (~10 min at 15 frames/s), not a phone's memory

// The shown reading: it changes only when a new reading (a digit or number, or blank: null) holds over
// `hold` consecutive frames (`clear` for blank), so one misread frame does not flicker through.
export class Steady {
  constructor(hold = HOLD, clear = CLEAR) {
    Object.assign(this, { hold, clear, shown: null, candidate: null, count: 0 });
  }

  // A frame's reading (a string, or null for none) -> the reading to show.
  push(key) {
    this.count = key === this.candidate ? this.count + 1 : 1;
    this.candidate = key;
    if (this.count >= (key === null ? this.clear : this.hold)) this.shown = key;
    return this.shown;
  }
}

// Why getUserMedia gave no camera, one line for the status; null when it is not known to be missing.
export function whyNoCamera(error) {
  if (!window.isSecureContext) {
    return `No camera: this page is not a secure context (${location.origin}); browsers give the camera only to https pages and localhost. Serve it with \`python -m export.web --https\`, or take a photo instead.`;
  }
  if (!error) return navigator.mediaDevices?.getUserMedia ? null : "No camera: this browser gives pages no camera access (no getUserMedia). Take a photo instead.";
  const name = error.name ?? "";
  if (name === "NotAllowedError" || name === "SecurityError") {
    return "No camera: permission refused. Allow the camera for this site in the browser's settings, then press Camera again.";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") return "No camera: none was found on this device.";
  if (name === "NotReadableError" || name === "AbortError") return "No camera: it is in use by another app, or could not be started. Close that app and press Camera again.";
  return `No camera: ${error.message || name || error}`;
}

// label(reading) -> the text shown for it.
const text = (reading, labels) => (reading.number ?? (reading.digit === null ? null : labels[reading.digit] ?? String(reading.digit)));

// Wire the camera mode into the page. `model()` resolves to the page's opened model (or null);
// `onFreeze(file)` takes a frozen frame as a PNG File; `setStatus(text, kind)` writes the status line.
export function initCamera({ model, onFreeze, setStatus }) {
  const $ = (id) => document.getElementById(id);
  const button = $("camera"), card = $("camera-card"), view = $("camera-view"), video = $("video");
  const overlay = $("overlay"), ctx = overlay.getContext("2d"), shown = $("camera-reading"), rate = $("camera-rate");
  let stream = null, worker = null, sent = null, busy = false, frozen = false, opening = false, ids = 0;
  let watching = false, latest = null, readAt = -Infinity; // media times (ms) of the newest frame, of the last read
  let steady = new Steady(), labels = [], times = [], last = null;
  window.cameraReadings = [];

  function startWorker() {
    worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => { pending.get(data.id)?.(data); pending.delete(data.id); };
    worker.onerror = (e) => { setStatus(`The camera's reader failed: ${e.message ?? "the worker could not start"}`, "error"); stop(); };
  }

  // A request to the worker; its answer (same id) resolves it.
  const pending = new Map();
  const ask = (message, transfer = []) => new Promise((resolve) => {
    const id = ++ids;
    pending.set(id, resolve);
    worker.postMessage({ ...message, id }, transfer);
  });

  // The worker opens the page's current model (again after a switch of weights).
  async function syncModel() {
    const m = await model();
    if (!m) throw new Error("no model is loaded");
    if (m === sent) return m;
    const got = await ask({ type: "model", bytes: m.bytes, params: m.params, labels: m.labels, inputName: m.inputName,
                            outputName: m.outputName, lineBytes: m.lines?.bytes ?? null });
    if (got.type !== "ready") throw new Error(got.message);
    sent = m;
    labels = m.labels;
    return m;
  }

  async function start() {
    const why = whyNoCamera(null);
    if (why) { setStatus(why, "error"); return false; }
    setStatus("Opening the camera…");
    opening = true; // a second press while the browser asks for permission opens nothing more
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false, video: { facingMode: { ideal: "environment" }, width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (e) {
      stream = null;
      setStatus(whyNoCamera(e), "error");
      return false;
    } finally {
      opening = false;
    }
    card.hidden = false;
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Stop camera";
    video.srcObject = stream;
    try {
      await video.play();
      if (!worker) startWorker();
      await syncModel();
    } catch (e) {
      stop();
      setStatus(`No camera: ${e.message ?? e}`, "error");
      return false;
    }
    window.cameraReadings = [];
    [steady, times, frozen, last, latest, readAt] = [new Steady(), [], false, null, null, -Infinity];
    shown.textContent = "";
    setStatus("Camera: point it at a digit. Tap the picture or press Space to freeze it.");
    view.focus({ preventScroll: true }); // Space now freezes, rather than pressing the Camera button again
    watch();
    return true;
  }

  function stop() {
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    video.srcObject = null;
    card.hidden = true;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Camera";
    frozen = false;
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    shown.textContent = "";
    rate.textContent = "";
  }

  // A frame callback stays registered while the camera runs: `latest` is the newest frame's media time
  // (for a camera: ms since its first frame; for a video file played as the camera: its position).
  function watch() {
    if (watching || !stream || frozen) return;
    watching = true;
    const seen = (mediaTime) => { watching = false; latest = mediaTime * 1000; watch(); next(); };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback((now, meta) => seen(meta.mediaTime));
    else requestAnimationFrame(() => seen(video.currentTime));
  }

  // Read the newest frame, if the reader is free and that frame is not read yet: as soon as a reading
  // returns, the next frame is on its way (no wait for the frame after).
  function next() {
    if (!stream || frozen || busy || latest === null || latest <= readAt) return;
    read(latest);
  }

  // Read the video's current frame in the worker, then show what it says.
  async function read(captured) {
    busy = true;
    readAt = captured;
    try {
      const { videoWidth: w, videoHeight: h } = video;
      const s = Math.min(1, CAMERA_SIDE / Math.max(w, h));
      const size = s < 1 ? { resizeWidth: Math.round(w * s), resizeHeight: Math.round(h * s), resizeQuality: "medium" } : {};
      const t0 = performance.now(), bitmap = await createImageBitmap(video, size);
      await syncModel();
      const [fw, fh] = [bitmap.width, bitmap.height];
      const got = await ask({ type: "frame", bitmap }, [bitmap]);
      if (got.type !== "reading") throw new Error(got.message);
      if (!stream || frozen) return; // stopped or frozen meanwhile: this frame is not the one shown
      const r = got.reading, now = performance.now();
      const reading = steady.push(text(r, labels));
      shown.textContent = reading ?? "";
      // ms: this frame, taken to read (worker_ms: of which in the worker); shown: the steady reading after it.
      window.cameraReadings.push({ t_ms: captured, digit: r.digit, number: r.number, confidence: r.confidence,
                                   shown: reading, ms: now - t0, worker_ms: got.ms });
      if (window.cameraReadings.length > KEEP_READINGS) window.cameraReadings.splice(0, window.cameraReadings.length - KEEP_READINGS);
      last = { ...r, frame: got.id, width: fw, height: fh };
      times = [...times.filter((t) => t > now - RATE_WINDOW), now];
      rate.textContent = times.length > 1 ? `${fps().toFixed(1)} frames/s read` : "";
      draw(last);
    } catch (e) {
      setStatus(`The camera's reader failed: ${e.message ?? e}`, "error");
      stop();
    } finally {
      busy = false;
      next();
    }
  }

  const fps = () => (times.length > 1 ? ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]) : 0);

  // The box of what the frame read, and its reading, over the video (the overlay has the frame's size).
  function draw(r, frame = null) {
    if (overlay.width !== r.width || overlay.height !== r.height) [overlay.width, overlay.height] = [r.width, r.height];
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    if (frame) ctx.putImageData(frame, 0, 0);
    if (!r.box) return;
    const [x0, y0, x1, y1] = r.box, line = Math.max(2, overlay.width / 200);
    ctx.lineWidth = line;
    ctx.strokeStyle = "#e4007c";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    if (r.digits?.length > 1) { // a number: each digit's box too, thinner
      ctx.lineWidth = line / 2;
      for (const d of r.digits) ctx.strokeRect(d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]);
    }
    const label = `${text(r, labels)}  ${(r.confidence * 100).toFixed(0)}%`;
    ctx.font = `bold ${Math.round(overlay.width / 18)}px system-ui, sans-serif`;
    const tw = ctx.measureText(label).width, th = overlay.width / 16, ty = y0 > th + line ? y0 - th - line / 2 : y1 + line / 2;
    ctx.fillStyle = "#e4007c";
    ctx.fillRect(x0 - line / 2, ty, tw + 2 * line + 8, th);
    ctx.fillStyle = "#fff";
    ctx.textBaseline = "middle";
    ctx.fillText(label, x0 + line + 2, ty + th / 2);
  }

  // Freeze: the frame that was last read, and its reading, stay on screen; the frame goes to the page
  // as a PNG file (lossless: the page reads the very pixels the camera read). Unfreeze: read on.
  async function toggleFreeze() {
    if (!stream) return;
    if (frozen) {
      frozen = false;
      await video.play();
      watch();
      return;
    }
    if (!last) return; // nothing read yet
    frozen = true;
    video.pause();
    const got = await ask({ type: "image", frame: last.frame });
    if (got.type !== "image" || !got.image) return;
    draw(last, got.image);
    const canvas = new OffscreenCanvas(got.image.width, got.image.height);
    canvas.getContext("2d").putImageData(got.image, 0, 0);
    const blob = await canvas.convertToBlob({ type: "image/png" });
    const stamp = new Date().toTimeString().slice(0, 8).replaceAll(":", "-");
    onFreeze(new File([blob], `camera-${stamp}.png`, { type: "image/png" }));
  }

  button.addEventListener("click", () => (stream ? stop() : opening ? null : start()));
  view.addEventListener("click", () => toggleFreeze());
  view.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); toggleFreeze(); } }); // a button's keys: Enter, and Space below
  document.addEventListener("keydown", (e) => {
    if (!stream || e.code !== "Space" || e.repeat) return;
    const t = e.target;
    if (t !== view && t.closest?.("button, input, select, textarea, [contenteditable]")) return; // Space is theirs
    e.preventDefault();
    toggleFreeze();
  });

  window.camera = { start, stop, toggleFreeze, get frozen() { return frozen; }, get active() { return !!stream; }, get fps() { return fps(); } };
}
