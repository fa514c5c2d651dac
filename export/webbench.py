"""Time the in-browser demo in headless Chromium, and make the README's screenshot of it.

    python -m export.webbench                                 # key=value lines: load -> first prediction, ms per inference
    python -m export.webbench --model other.onnx --calls 300
    python -m export.webbench --screenshot docs/web-demo.png  # the real page, a test digit drawn on it
    python -m export.webbench --camera-screenshot docs/camera-demo.png  # camera mode, reading the fake camera

Needs what the tests need: `npm ci` (onnxruntime-web), Debian's chromium at /usr/bin/chromium
(`apt-get install chromium`; never a downloaded browser) and `pip install playwright`. It starts
`python -m export.web` the way a user does, drives the page with Playwright, and prints:

    web_load_to_model_ready_ms      navigation start -> model fetched, checked, session created, warmed up
    web_load_to_first_prediction_ms navigation start -> first file classified (the file is handed over at load)
    web_{fp32,int8}_infer_ms_p50    one session.run of a 1x1x28x28 input (wasm, 1 thread), median of CALLS calls
    web_{fp32,int8}_infer_ms_mean   the same calls' total time / CALLS (not rounded by the browser's timer)
    ort_python_{fp32,int8}_infer_ms_p50  onnxruntime for Python, 1 thread, same inputs, for comparison
    web_camera_fps                  camera mode: frames read a second, 640x480, over CAMERA_SECONDS of the fake
                                    camera (tests/camera_video.py's video played as the camera), one worker, 1 thread
    web_camera_frame_ms_p50         camera mode: one frame, grabbed -> read (preprocessing + inference in the worker), median

The browser rounds performance.now() to 0.1 ms on pages without cross-origin isolation, so the
p50/p95 figures move in 0.1 ms steps; the means are exact.

This module also holds the helpers tests/test_web.py uses (server, browser, MNIST test digits,
strokes that trace a digit's skeleton).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "mnist"
CHROMIUM = "/usr/bin/chromium"
CAMERA_SECONDS = 12  # s of the fake camera's video read for web_camera_*: nearly one loop of it (13 s)
# As root Chromium needs --no-sandbox; the rest keeps it off Google's servers (the network is closed).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def mnist_test_digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first n MNIST test images, uint8 (n, 28, 28) light on dark, and their labels (n,)."""
    images = np.frombuffer(gzip.open(DATA / "t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.frombuffer(gzip.open(DATA / "t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    return images[:n], labels[:n]


@contextlib.contextmanager
def web_server(*args: str, timeout: float = 60):
    """`python -m export.web ARGS --port 0` in a subprocess, as a user runs it; yields its printed URL."""
    proc = subprocess.Popen([sys.executable, "-m", "export.web", *args, "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, url = time.monotonic() + timeout, None
        for line in proc.stdout:  # the URL is the last line it prints before serving
            match = re.match(r"open\s+(https?://\S+)", line)
            if match:
                url = match.group(1)
                break
            if time.monotonic() > deadline:
                break
        if url is None:
            proc.kill()
            raise RuntimeError(f"python -m export.web did not start: {proc.stderr.read().strip()}")
        for stream in (proc.stdout, proc.stderr):  # keep reading, so a chatty server never blocks on a full pipe
            threading.Thread(target=stream.read, daemon=True).start()
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def launch(playwright, video: Path | None = None):
    """Headless Debian Chromium (never a downloaded browser); with `video`, that Y4M file plays as its camera
    (the permission granted)."""
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"] if video else []
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + camera)


def camera_readings(page, seconds: float) -> list[dict]:
    """Press Camera, then window.cameraReadings over `seconds` of video after the first reading."""
    page.get_by_test_id("camera").click()
    page.wait_for_function("window.cameraReadings.length > 0", timeout=60_000)
    first = page.evaluate("window.cameraReadings[0].t_ms")
    page.wait_for_function("t => window.cameraReadings.at(-1).t_ms >= t", arg=first + seconds * 1000, timeout=seconds * 4000 + 30_000)
    return page.evaluate("window.cameraReadings")


def camera_bench(url: str, p) -> dict[str, float]:
    """web_camera_fps and web_camera_frame_ms_p50, reading tests/camera_video.py's video as the camera."""
    from tests import camera_video

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "camera.y4m"
        camera_video.write(video)
        browser = launch(p, video)
        page = browser.new_page()
        page.goto(url)
        wait_ready(page)
        readings = camera_readings(page, CAMERA_SECONDS)
        browser.close()
    t = np.array([r["t_ms"] for r in readings])
    return {"web_camera_fps": (len(t) - 1) * 1000 / (t[-1] - t[0]),
            "web_camera_frame_ms_p50": float(np.median([r["ms"] for r in readings]))}


def wait_ready(page) -> None:
    """Until the model is loaded (or failed to load: then status says why)."""
    page.evaluate("window.mnist.ready")


# ---- strokes that trace a digit ---------------------------------------------------------------

def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: bool (H, W) -> its one-pixel-wide skeleton, bool (H, W)."""
    img = np.pad(mask, 1).astype(np.int32)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            # The 8 neighbours P2..P9, clockwise from north.
            p2, p3, p4, p5 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:]
            p6, p7, p8, p9 = img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            count = sum(ring[:8])  # B(P1): neighbours set
            turns = sum((ring[i] == 0) & (ring[i + 1] == 1) for i in range(8))  # A(P1): 0 -> 1 transitions
            drop = (c == 1) & (count >= 2) & (count <= 6) & (turns == 1)
            if step == 0:
                drop &= (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                drop &= (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            if drop.any():
                c[drop] = 0
                changed = True
    return img[1:-1, 1:-1].astype(bool)


def strokes(image: np.ndarray, threshold: int = 128) -> list[list[tuple[float, float]]]:
    """A light-on-dark uint8 (28, 28) digit -> pen paths [(x, y), ...] in pixel units along its skeleton."""
    pts = {tuple(p) for p in np.argwhere(thin(image >= threshold))}  # (row, col)
    near = lambda p: [(p[0] + dy, p[1] + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy or dx) and (p[0] + dy, p[1] + dx) in pts]
    todo, paths = set(pts), []
    while todo:
        # Start at an end (fewest unvisited neighbours), so a stroke is not split in the middle.
        start = min(todo, key=lambda p: (sum(q in todo for q in near(p)), p))
        done_nb = [q for q in near(start) if q not in todo]
        path = done_nb[:1] + [start]  # join a branch to what is drawn already
        todo.discard(start)
        cur = start
        while nxt := [q for q in near(cur) if q in todo]:
            cur = min(nxt, key=lambda q: abs(q[0] - cur[0]) + abs(q[1] - cur[1]))  # straight before diagonal
            path.append(cur)
            todo.discard(cur)
        if len(path) > 3 and start in near(cur):
            path.append(start)  # close a loop (0, 6, 8, 9)
        paths.append(path)
    return [[(c + 0.5, r + 0.5) for r, c in path] for path in paths if len(path) >= 2]


def draw(page, paths, size: int = 28) -> None:
    """Trace `paths` (pixel units of a size x size image) across the canvas with the mouse (pointer events)."""
    box = page.get_by_test_id("canvas").bounding_box()
    sx, sy = box["width"] / size, box["height"] / size
    for path in paths:
        page.mouse.move(box["x"] + path[0][0] * sx, box["y"] + path[0][1] * sy)
        page.mouse.down()
        for x, y in path[1::2] + path[-1:]:  # every other pixel: straight segments 2 px long
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
        page.mouse.up()
    page.evaluate("window.mnist.settled()")


# ---- the benchmark ----------------------------------------------------------------------------

def python_times(model: Path, inputs: np.ndarray) -> list[float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    feeds = [{"image": x[None, None]} for x in inputs]
    for f in feeds[:10]:
        session.run(["probs"], f)
    times = []
    for f in feeds:
        t0 = time.perf_counter()
        session.run(["probs"], f)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def bench(model: Path, calls: int, loads: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright
    from PIL import Image

    images, _ = mnist_test_digits(calls)
    inputs = images.astype(np.float32) / 255  # (calls, 28, 28): MNIST's own inputs, no preprocessing
    int8 = model.with_name(model.name.removesuffix(".onnx") + ".int8.onnx")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, web_server("--model", str(model)) as url, sync_playwright() as p:
        digit = Path(tmp) / "digit.png"
        Image.fromarray(255 - images[0]).resize((112, 112), Image.BILINEAR).save(digit)
        browser = launch(p)
        ready, first = [], []
        for _ in range(loads):  # a fresh context each time: nothing cached from the previous load
            context = browser.new_context()
            page = context.new_page()
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_test_id("file-input").set_input_files(str(digit))
            page.wait_for_function("window.mnist && window.mnist.timings.firstPrediction")
            t = page.evaluate("window.mnist.timings")
            ready.append(t["modelReady"])
            first.append(t["firstPrediction"])
            context.close()
        out["web_load_to_model_ready_ms"] = float(np.median(ready))
        out["web_load_to_first_prediction_ms"] = float(np.median(first))
        page = browser.new_page()
        page.goto(url)
        wait_ready(page)
        variants = ["fp32", "int8"] if int8.is_file() else ["fp32"]
        page.evaluate("xs => { window.benchInputs = xs.map(x => Float32Array.from(x)); }", inputs.reshape(len(inputs), -1).tolist())
        times = {v: [] for v in variants}
        rounds = 3
        for r in range(rounds):  # interleaved, so a busy machine slows both alike
            for v in variants:
                page.evaluate("v => window.mnist.loadModel(v)", v)
                part = inputs.shape[0] // rounds
                times[v] += page.evaluate(f"window.mnist.time(window.benchInputs.slice({r * part}, {(r + 1) * part}))")
        browser.close()
        out.update(camera_bench(url, p))
    for v in variants:
        t = np.array(times[v])
        out[f"web_{v}_infer_ms_p50"] = float(np.median(t))
        out[f"web_{v}_infer_ms_p95"] = float(np.percentile(t, 95))
        out[f"web_{v}_infer_ms_mean"] = float(t.mean())
        py = np.array(python_times(model if v == "fp32" else int8, inputs))
        out[f"ort_python_{v}_infer_ms_p50"] = float(np.median(py))
    return out


def screenshot(model: Path, path: Path, width: int, height: int, index: int) -> None:
    """The real page at width x height, test digit `index` traced on the pad; a small palette PNG."""
    from playwright.sync_api import sync_playwright
    from PIL import Image

    images, _ = mnist_test_digits(index + 1)
    with web_server("--model", str(model)) as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        wait_ready(page)
        draw(page, strokes(images[index]))
        page.mouse.move(0, 0)
        page.screenshot(path=str(path), full_page=True)
        browser.close()
    Image.open(path).convert("RGB").quantize(128).save(path, optimize=True)  # UI colours: a palette is plenty


def camera_screenshot(model: Path, path: Path, width: int, height: int) -> None:
    """Camera mode reading the fake camera (tests/camera_video.py), frozen on a digit it reads steadily; a small
    palette PNG of the page at `width` px wide, from the prediction's card to the end of the camera's."""
    from playwright.sync_api import sync_playwright
    from PIL import Image

    from tests import camera_video

    with tempfile.TemporaryDirectory() as tmp, web_server("--model", str(model)) as url, sync_playwright() as p:
        video = Path(tmp) / "camera.y4m"
        timeline = camera_video.write(video)
        browser = launch(p, video)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        wait_ready(page)
        page.get_by_test_id("camera").click()
        # The second digit scene of the file's second loop (the first loop's start is the page's start-up), once
        # its reading holds: a steady reading, the box drawn.
        scene = [s for s in timeline if s["label"] is not None][1]
        loop = timeline[-1]["end_ms"]
        page.wait_for_function("t => window.cameraReadings.length && window.cameraReadings.at(-1).t_ms >= t",
                               arg=loop + scene["start_ms"] + 600, timeout=60_000)
        before = page.evaluate("window.mnist.updates")
        page.keyboard.press("Space")
        page.wait_for_function("n => window.mnist.updates > n", arg=before, timeout=30_000)
        page.mouse.move(0, 0)
        page.evaluate("document.activeElement.blur()")  # no focus ring in the picture
        top = page.locator(".result-card").bounding_box()
        bottom = page.locator(".drop-card").bounding_box()
        clip = {"x": 0, "y": top["y"] - 16, "width": width, "height": bottom["y"] + bottom["height"] - top["y"] + 32}
        page.screenshot(path=str(path), full_page=True, clip=clip)
        browser.close()
    Image.open(path).convert("RGB").quantize(128).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.webbench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="artifacts/mnist.onnx", type=Path, help="the fp32 .onnx (its .int8.onnx beside it is timed too)")
    parser.add_argument("--calls", type=int, default=300, help="inference calls per model (real test digits)")
    parser.add_argument("--loads", type=int, default=3, help="fresh page loads timed (median)")
    parser.add_argument("--screenshot", type=Path, help="write a screenshot of the page here instead of timing")
    parser.add_argument("--size", default="1000x900", help="viewport for --screenshot, WIDTHxHEIGHT (the page is captured whole)")
    parser.add_argument("--digit", type=int, default=0, help="which MNIST test digit --screenshot draws")
    parser.add_argument("--camera-screenshot", type=Path, help="write a screenshot of camera mode (the fake camera) here instead of timing")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"error: model {args.model} not found: export one with `python -m export --int8`, or pass --model PATH", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).is_file():
        print(f"error: {CHROMIUM} not found: install Debian's chromium (`apt-get install -y chromium`)", file=sys.stderr)
        return 2
    try:
        if args.camera_screenshot:
            width, height = (int(v) for v in args.size.lower().split("x"))
            camera_screenshot(args.model, args.camera_screenshot, width, height)
            print(f"wrote {args.camera_screenshot} ({args.camera_screenshot.stat().st_size / 1024:.0f} KiB)")
            return 0
        if args.screenshot:
            width, height = (int(v) for v in args.size.lower().split("x"))
            screenshot(args.model, args.screenshot, width, height, args.digit)
            print(f"wrote {args.screenshot} ({args.screenshot.stat().st_size / 1024:.0f} KiB)")
            return 0
        print(f"{args.model}: headless Chromium, onnxruntime-web wasm, 1 thread; {args.calls} calls per model, {args.loads} page loads")
        for key, value in bench(args.model, args.calls, args.loads).items():
            print(f"{key}={value:.3f}")
    except ImportError as e:
        print(f"error: {e.name} is not installed: pip install -e '.[test]'", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
