"""Camera mode, in headless Debian Chromium with a video file as the camera.

Chromium plays tests/camera_video.py's Y4M as the camera (`--use-fake-device-for-media-stream
--use-file-for-fake-video-capture=FILE`, the permission granted by `--use-fake-ui-for-media-stream`): ten
photos of MNIST test digits, each held a second, blank paper between some. The file loops; each reading's
t_ms is its frame's media time (ms since the camera's first frame: the position in the file, plus whole
loops), so every reading is matched to the scene it was of, whatever the page's start-up took.
"""

import re
import shutil
import socket

import numpy as np
import pytest

from PIL import Image

from export.webbench import CHROMIUM, CHROMIUM_ARGS, REPO, mnist_test_digits, wait_ready, web_server

pytest.importorskip("playwright", reason="pip install -e '.[test]'")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium", allow_module_level=True)
if not (REPO / "node_modules" / "onnxruntime-web").is_dir():
    pytest.skip("node_modules/onnxruntime-web missing: run `npm ci`", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

from tests import camera_video  # noqa: E402

FAKE_CAMERA = ["--use-fake-device-for-media-stream"]
GRANT = ["--use-fake-ui-for-media-stream"]  # answers the permission prompt with yes
# A scene's first 0.6 s: the reading before it still shows until the new one holds (Steady's 3 frames): measured
# up to 0.48 s at 7-9 frames/s on this machine under other jobs' load.
SETTLE_MS = 600
# Measured (2026-12, this 2-core machine shared with other jobs, 7-15 frames/s): all 10 digits read right,
# no digit shown in the blank stretches. At least 9 of 10, as the issue asks.
RIGHT = 9
LOOPS = 3  # loops of the file at most, while a scene has fewer than 2 frames read


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    return path, camera_video.write(path)


@pytest.fixture(scope="module")
def served(good_model, line_model, tmp_path_factory):
    """The page with the line model beside the model, as `python -m export --lines` leaves it: the camera's
    worker opens both (a single digit still reads as itself)."""
    site = tmp_path_factory.mktemp("site")
    for src in (good_model, good_model.with_name("mnist.int8.onnx"), good_model.with_name("mnist.json"), line_model):
        (site / src.name).symlink_to(src)
    with web_server("--model", str(site / "mnist.onnx")) as url:
        yield url


def open_page(playwright, url, *flags, **options):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(flags))
    page = browser.new_page(**options)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    wait_ready(page)
    return browser, page, errors


def scene_of(t_ms: float, timeline: list[dict]) -> int | None:
    """The index of the scene the frame at media time t_ms shows (the file loops), or None at a scene's start."""
    t = t_ms % timeline[-1]["end_ms"]
    for i, s in enumerate(timeline):
        if s["start_ms"] + SETTLE_MS <= t < s["end_ms"]:
            return i
    return None


def frames_per_scene(readings: list[dict], timeline: list[dict], start: float, loops: int) -> list[int]:
    """How many readings fell in each scene's judged part, over `loops` loops of the file from media time `start`."""
    loop_ms = timeline[-1]["end_ms"]
    scenes = [scene_of(r["t_ms"], timeline) for r in readings if start <= r["t_ms"] < start + loops * loop_ms]
    return [scenes.count(i) for i in range(len(timeline))]


def test_camera_reads_the_digits_steadily(served, video):
    path, timeline = video
    loop_ms = timeline[-1]["end_ms"]
    with sync_playwright() as p:
        browser, page, errors = open_page(p, served, *FAKE_CAMERA, *GRANT, f"--use-file-for-fake-video-capture={path}")
        # The page's thread must stay free while the camera reads: clicks on a button are handled at once.
        page.evaluate("""() => {
            window.clickDelays = [];
            document.getElementById('clear').addEventListener('click', (e) => window.clickDelays.push(performance.now() - e.timeStamp));
            window.longTasks = [];
            new PerformanceObserver((l) => window.longTasks.push(...l.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
        }""")
        page.get_by_test_id("camera").click()
        page.wait_for_function("window.cameraReadings.length > 0", timeout=30_000)
        # One whole loop of the file, from the end of the scene the first reading fell in (that scene, already
        # under way when the reader started, is judged in the next loop).
        t = page.evaluate("window.cameraReadings[0].t_ms")
        start = t - t % loop_ms + next(s["end_ms"] for s in timeline if s["end_ms"] > t % loop_ms)
        for k in range(5):  # spread over the loop
            page.wait_for_function("t => window.cameraReadings.at(-1).t_ms > t", arg=start + (k + 1) * loop_ms / 6, timeout=30_000)
            page.get_by_test_id("clear").click()
        # A stall in the frame times (seen once in ~20 runs: 1 frame in a 1 s scene at 11 frames/s overall) leaves a
        # scene too few frames to judge: such a scene is judged over the next loop as well, up to LOOPS in all.
        for loops in range(1, LOOPS + 1):
            page.wait_for_function("t => window.cameraReadings.at(-1).t_ms > t", arg=start + loops * loop_ms + 200, timeout=30_000)
            readings, shown_text = page.evaluate("[window.cameraReadings, document.querySelector('[data-testid=camera-reading]').textContent]")
            if min(frames_per_scene(readings, timeline, start, loops)) >= 2:
                break
        delays, long_tasks = page.evaluate("[window.clickDelays, window.longTasks]")

        # Freeze (a tap on the picture): the frame read last and its reading go where a dropped file's result goes.
        before = page.evaluate("window.mnist.updates")
        page.locator("#camera-view").click()
        page.wait_for_function("n => window.mnist.updates > n", arg=before, timeout=30_000)
        frozen = page.evaluate("[window.camera.frozen, window.cameraReadings.at(-1), window.lastResults.map(r => ({name: r.name, digit: r.digit}))]")
        count = page.evaluate("window.cameraReadings.length")
        page.wait_for_timeout(500)
        frozen_count = page.evaluate("window.cameraReadings.length")
        page.keyboard.press("Space")  # and on again (the tap left the focus on the picture: Space is the camera's)
        page.wait_for_function("n => window.cameraReadings.length > n", arg=frozen_count, timeout=30_000)
        assert page.evaluate("window.camera.frozen") is False
        page.get_by_test_id("camera").click()  # off: the camera is released
        assert page.evaluate("window.camera.active") is False and page.locator("#camera-card").is_hidden()
        browser.close()

    window = [r for r in readings if start <= r["t_ms"] < start + loops * loop_ms]
    t = np.array([r["t_ms"] for r in window])
    fps = (len(t) - 1) * 1000 / (t[-1] - t[0])
    ms = np.median([r["ms"] for r in window])
    print(f"\ncamera: {len(window)} frames analysed in {loops} loop(s), {(t[-1] - t[0]) / 1000:.1f} s of video: {fps:.1f} frames/s, "
          f"{ms:.0f} ms a frame (median), click delays {max(delays):.0f} ms at most, long tasks {sorted(long_tasks)}")
    right, lines = 0, []
    for i, scene in enumerate(timeline):
        frames = [r for r in window if scene_of(r["t_ms"], timeline) == i]
        shown = [r["shown"] for r in frames]
        lines.append(f"  {'blank' if scene['label'] is None else scene['label']}: shown {' '.join(str(s or '-') for s in shown)}")
        assert len(frames) >= 2, f"scene {i}: {len(frames)} frames read, too few to judge"
        if scene["label"] is None:
            assert all(s is None for s in shown), f"a digit shown on blank paper (scene {i}): {shown}"
        else:
            right += all(s == str(scene["label"]) for s in shown)
    print("\n".join(lines))
    digits = sum(s["label"] is not None for s in timeline)
    print(f"camera: steady readings right for {right} of {digits} digits")
    assert right >= RIGHT
    assert errors == []
    # Each reading has the hook's fields; the text shown is the steady reading.
    assert set(readings[0]) >= {"t_ms", "digit", "number", "confidence"}
    assert shown_text == (readings[-1]["shown"] or "")
    # The UI thread stayed free while the camera read. Measured in six runs: clicks handled within 1-12 ms,
    # one task over 50 ms in all (59 ms). Reading on that thread makes a long task of nearly every frame:
    # with 45 ms of busy work a frame put there, 98 long tasks in the loop (the clicks still slipped in between).
    assert len(delays) == 5 and max(delays) < 25, delays
    assert len(long_tasks) <= 2, long_tasks
    # Frozen: no more frames read; the page's result is the frozen frame's, a PNG named camera-*.png.
    is_frozen, last, results = frozen
    assert is_frozen and frozen_count == count
    assert len(results) == 1 and re.fullmatch(r"camera-\d\d-\d\d-\d\d\.png", results[0]["name"])
    if last["digit"] is not None:
        assert results[0]["digit"] == last["digit"]


def test_camera_refused_says_why(served, tmp_path):
    """Without the fake UI the permission is refused: the page says so in its status line and stays usable."""
    images, labels = mnist_test_digits(1)
    digit_png, label = tmp_path / "digit.png", labels[0]
    Image.fromarray(255 - images[0]).resize((112, 112), Image.BILINEAR).save(digit_png)
    with sync_playwright() as p:
        browser, page, errors = open_page(p, served, *FAKE_CAMERA)
        page.get_by_test_id("camera").click()
        page.wait_for_function("document.querySelector('[data-testid=status]').textContent.startsWith('No camera')", timeout=20_000)
        status = page.get_by_test_id("status").text_content()
        assert status.startswith("No camera: permission refused"), status
        assert page.locator("#camera-card").is_hidden()
        assert page.get_by_test_id("camera").get_attribute("aria-pressed") == "false"
        page.get_by_test_id("clear").click()  # the page still answers
        page.wait_for_function("document.querySelector('[data-testid=status]').textContent === 'Blank canvas: draw a digit.'")
        # The photo input offers the phone's camera app (a desktop browser opens its file chooser).
        photo = page.get_by_test_id("photo-input")
        assert photo.get_attribute("accept") == "image/*" and photo.get_attribute("capture") == "environment"
        assert page.get_by_test_id("file-input").get_attribute("capture") is None  # several files at once, as before
        before = page.evaluate("window.mnist.updates")
        photo.set_input_files(str(digit_png))  # what the camera app hands back is read as any file
        page.wait_for_function("n => window.mnist.updates > n", arg=before)
        assert page.evaluate("window.lastResults.map(r => [r.name, r.digit])") == [["digit.png", int(label)]]
        browser.close()
    assert errors == []


def lan_address() -> str | None:
    """This machine's address on its network (not loopback), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's source address
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_camera_needs_a_secure_context(good_model):
    """Over http to a LAN address the page is no secure context: no camera, and the status says why."""
    address = lan_address()
    if address is None:
        pytest.skip("no network address besides loopback")
    with web_server("--model", str(good_model), "--host", "0.0.0.0") as url, sync_playwright() as p:
        browser, page, errors = open_page(p, url.replace("127.0.0.1", address), *FAKE_CAMERA, *GRANT)
        assert page.evaluate("window.isSecureContext") is False
        page.get_by_test_id("camera").click()
        status = page.get_by_test_id("status").text_content()
        assert status.startswith("No camera: this page is not a secure context"), status
        assert "--https" in status
        browser.close()
    assert errors == []


@pytest.mark.skipif(not shutil.which("openssl"), reason="the openssl command makes --https's certificate")
def test_camera_over_https_on_the_network_address(good_model, video, tmp_path):
    """The phone's way: `--host 0.0.0.0 --https`, the page opened at the machine's network address (the
    self-signed certificate accepted, as the user does after checking its fingerprint): the camera reads."""
    address = lan_address()
    if address is None:
        pytest.skip("no network address besides loopback")
    path, _ = video
    with web_server("--model", str(good_model), "--host", "0.0.0.0", "--https", "--cert-dir", str(tmp_path)) as url, \
            sync_playwright() as p:
        assert url.startswith("https://")
        browser, page, errors = open_page(p, url.replace("127.0.0.1", address), *FAKE_CAMERA, *GRANT,
                                          f"--use-file-for-fake-video-capture={path}", ignore_https_errors=True)
        assert page.evaluate("window.isSecureContext") is True
        page.get_by_test_id("camera").click()
        page.wait_for_function("window.cameraReadings.length >= 3", timeout=30_000)
        browser.close()
    assert errors == []
