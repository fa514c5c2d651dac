"""A fake camera for Chromium: a Y4M video of photos of MNIST test digits, held in front of the lens.

Chromium plays a video file as the camera when launched with
`--use-fake-device-for-media-stream --use-file-for-fake-video-capture=FILE` (add
`--use-fake-ui-for-media-stream` to grant the permission without asking). It plays the file in real time
at its frame rate, at the file's own size, and loops it. Y4M is raw: `YUV4MPEG2 W640 H480 F30:1 Ip A1:1
C420jpeg`, then per frame `FRAME\\n` and the Y (H, W), U and V (H/2, W/2) planes. Chromium turns it into RGB
as BT.601 limited range (Y 16-235, U and V 16-240), so this writer encodes that way.

The scenes (SCENES): each one photo from tests/photos.py (plain, lined and grid paper, a sheet on a desk;
MNIST's own stroke or a marker: a thin pen's 1-4 px lines in a 1000-4000 px photo vanish at 640x480),
cropped to the camera's 4:3, held for `seconds` with the hand's shake (the frame wanders a few px, turns a
little) and, for some, blur; blank paper between some digits.

    python -m tests.camera_video /tmp/camera.y4m          # write the video; prints its timeline
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from tests.photos import FAMILIES, MARKER, MNIST_INK, render

W, H, FPS = 640, 480, 30
MARGIN = 24  # px around the 640x480 window: room for the shake without showing an edge
STEP = 3  # frames each position of the shake is held (10 positions a second: a hand, not a vibration)
PLAIN, LINED, GRID = FAMILIES["paper"]
FILLS, DESK = FAMILIES["framing"][:2]


@dataclass
class Scene:
    """`seconds` of one photo: of MNIST test digit `index` (None: blank paper), drawn with `kind`."""
    index: int | None
    kind: dict
    seconds: float = 1.0
    shake: float = 2.0  # px: how far the frame wanders (and 0.3 deg per px of it: the hand turns too)
    blur: float = 0.0  # Gaussian radius in px (out of focus, or moving)


# Ten test digits (the first ten of the MNIST test set: 7 2 1 0 4 1 4 9 5 9), blank paper after three of them.
SCENES = [
    Scene(0, {"paper": PLAIN, "framing": FILLS}),
    Scene(1, {"paper": LINED, "framing": FILLS}),
    Scene(2, {"paper": GRID, "framing": FILLS}),
    Scene(None, {"blank": "paper", "paper": PLAIN}),
    Scene(3, {"paper": PLAIN, "framing": DESK}),
    Scene(4, {"paper": LINED, "framing": FILLS}, shake=6.0),  # hand-held: tilted and wandering
    Scene(5, {"paper": GRID, "framing": DESK}),
    Scene(None, {"blank": "paper", "paper": LINED}),
    Scene(6, {"paper": PLAIN, "framing": FILLS}, blur=1.5),  # out of focus
    Scene(7, {"paper": LINED, "framing": DESK}, blur=1.0, shake=4.0),
    Scene(8, {"paper": GRID, "framing": FILLS}),
    Scene(None, {"blank": "paper", "paper": GRID}),
    Scene(9, {"paper": PLAIN, "framing": FILLS}, shake=4.0),
]


def photo(scene: Scene, digits: np.ndarray, rng) -> Image.Image:
    """The scene's photo, landscape, scaled to cover (W + 2 MARGIN) x (H + 2 MARGIN)."""
    kind = {**scene.kind, "resolution": FAMILIES["resolution"][0]}
    if scene.index is not None:
        kind["pen"] = [MNIST_INK, MARKER][int(rng.integers(2))]
    while True:  # photos.py draws portrait or landscape: take the first landscape one
        jpeg, a = render(None if scene.index is None else digits[scene.index], rng, kind)
        img = Image.open(io.BytesIO(jpeg)).convert("RGB")
        if img.width > img.height:
            break
    s = max((W + 2 * MARGIN) / img.width, (H + 2 * MARGIN) / img.height)
    img = img.resize((round(img.width * s), round(img.height * s)), Image.BILINEAR)
    left, top = (img.width - W - 2 * MARGIN) // 2, (img.height - H - 2 * MARGIN) // 2
    return img.crop((left, top, left + W + 2 * MARGIN, top + H + 2 * MARGIN))


def frames(scene: Scene, img: Image.Image, rng):
    """The scene's frames, uint8 (H, W, 3) each: the hand's shake, a new position every STEP frames."""
    n = round(scene.seconds * FPS)
    pos = np.zeros(2)
    for i in range(0, n, STEP):
        pos = np.clip(pos * 0.6 + rng.normal(0, scene.shake, 2), -MARGIN / 2, MARGIN / 2)  # a wandering hand
        # One affine map, output pixel -> photo pixel: turned by 0.3 deg per px of wander about the
        # window's centre, which sits at the photo's centre + pos.
        t = np.radians(0.3 * pos[0])
        c, sn = np.cos(t), np.sin(t)
        cx, cy = img.width / 2 + pos[0], img.height / 2 + pos[1]
        view = img.transform((W, H), Image.AFFINE, (c, -sn, cx - c * W / 2 + sn * H / 2, sn, c, cy - sn * W / 2 - c * H / 2),
                             resample=Image.BILINEAR)
        if scene.blur:
            view = view.filter(ImageFilter.GaussianBlur(scene.blur))
        frame = np.asarray(view)
        for _ in range(min(STEP, n - i)):
            yield frame


def yuv420(rgb: np.ndarray) -> bytes:
    """uint8 (H, W, 3) RGB -> the Y, U, V planes of one Y4M frame, BT.601 limited range, U and V 2x2 means."""
    r, g, b = (rgb[..., i].astype(np.float32) / 255 for i in range(3))
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b  # 16-235
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b  # 16-240
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    half = lambda c: (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]) / 4
    planes = [y, half(u), half(v)]
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def write(path: Path, scenes=SCENES, seed: int = 0) -> list[dict]:
    """Write the Y4M; returns the timeline: one {start_ms, end_ms, label (None: blank)} per scene."""
    from export.webbench import mnist_test_digits

    digits, labels = mnist_test_digits(10)  # TEST digits only
    digits = np.ascontiguousarray(digits)
    rng = np.random.default_rng(seed)
    timeline, frame = [], 0
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for scene in scenes:
            start = frame
            last = None
            for rgb in frames(scene, photo(scene, digits, rng), rng):
                if rgb is not last:  # a held position: encoded once
                    data, last = yuv420(rgb), rgb
                f.write(b"FRAME\n" + data)
                frame += 1
            label = None if scene.index is None else int(labels[scene.index])
            timeline.append({"start_ms": start * 1000 / FPS, "end_ms": frame * 1000 / FPS, "label": label})
    return timeline


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.camera_video", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the .y4m file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for t in write(args.out, seed=args.seed):
        print(f"{t['start_ms']:7.0f} - {t['end_ms']:7.0f} ms  {'blank' if t['label'] is None else t['label']}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.0f} MiB, {W}x{H} at {FPS} frames/s, loops when played)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
