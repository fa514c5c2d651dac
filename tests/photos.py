"""Photo-like test images: MNIST TEST digits written on paper and photographed with a phone.

Each image is an MNIST test digit (never a training digit) written on plain, lined or grid paper: in ink
with MNIST's own stroke (black, blue, red or pencil), in a thin ballpoint (black or blue, 1-4 px wide in a
1000-4000 px photo: the digit's centre line drawn at a fixed width, tests/strokes.py), or in a bold
marker (black, blue or red). The sheet fills the frame or lies on a darker desk (30-90% of the frame);
or the digit is photographed close up (it fills 60-95% of the frame) or touches the frame's edge (up to
6% of it cut off). A lighting gradient always, a soft shadow often; the sheet turned by up to +-10
degrees and seen in mild perspective; sometimes specks of dust or a second, smaller mark; the white
balance neutral, yellowish or bluish; sensor noise, low or high (per channel), sometimes a little blur;
480-800 px, or a phone's 1000-4000 px; saved as JPEG. Blank photos (paper only, desk only) have no digit.
Every parameter is drawn from numpy's default_rng with a fixed seed, so a seed names a set of images
exactly. FAMILIES lists the attributes, WEIGHTS and INKS how often each value is drawn.

    python -m tests.photos --model artifacts/mnist.onnx            # the per-family accuracy table
    python -m tests.photos --model artifacts/mnist.onnx --numbers  # ... and read() as numbers: a digit alone?
    python -m tests.photos --model artifacts/mnist.onnx --gallery docs/photos-gallery.png
    python -m tests.photos --out /tmp/photos --n 50                # just write the JPEG files
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tests import strokes
from src.lines import bilinear as _bilinear
from tests.optics import _add_noise, _apply, _homography, _line_cover, _smooth_noise

FAMILIES = {  # attribute -> its values; every digit photo has one value of each
    "paper": ["plain", "lined", "grid"],
    "ink": ["black", "blue", "pencil", "red"],
    "pen": ["ink as MNIST", "thin pen (1-4 px, 1000-4000 px photo)", "marker"],
    "framing": ["sheet fills the frame", "sheet on a desk", "close-up (digit fills 60-95%)", "digit touches an edge"],
    "light": ["gradient", "gradient + shadow"],
    "marks": ["digit only", "specks or a second mark"],
    "rotation": ["|angle| < 5 deg", "|angle| 5-10 deg"],
    "resolution": ["480-800 px", "1000-4000 px"],
    "white balance": ["neutral", "yellowish", "bluish"],
    "noise": ["low", "high"],
    "jpeg": ["quality 50-74", "quality 75-95"],
}
MNIST_INK, THIN, MARKER = FAMILIES["pen"]
FILLS, DESK, CLOSE, EDGE = FAMILIES["framing"]
LOW_RES, PHONE_RES = FAMILIES["resolution"]
WEIGHTS = {  # the probabilities of the values drawn unequally (the others: equally likely)
    "pen": [0.5, 0.3, 0.2],
    "framing": [0.3, 0.3, 0.2, 0.2],
    "white balance": [0.5, 0.25, 0.25],
    "noise": [0.6, 0.4],
}
INKS = {  # the inks each pen writes in, and their probabilities
    MNIST_INK: (["black", "blue", "pencil", "red"], [0.3, 0.3, 0.3, 0.1]),
    THIN: (["black", "blue"], [0.5, 0.5]),  # ballpoint
    MARKER: (["black", "blue", "red"], [0.35, 0.35, 0.3]),
}
PHONE = {"digit": 0.2, "blank": 0.4}  # share of 1000-4000 px photos, thin pen aside (thin pen: all of them)
RATIO = 250  # a thin pen's digit is at most 250 stroke widths tall (a 10 cm digit in 0.4 mm ballpoint)
GRID = 112  # px: the MNIST digit enlarged 4x, where pens are shaped


def _pen(digit: np.ndarray, pen: str, rng, layers: np.ndarray | None = None) -> dict:
    """The digit as the pen writes it, on the GRID x GRID enlargement (a wider (28 a, 28 b) bitmap, such as a
    number from tests/numbers.py: 4x too): "alpha" (ink coverage) for MNIST's grey levels or a marker, "nodes"
    and "edges" (its smoothed centre line) for a thin pen; "points": (n, 2) grid (x, y) of the ink, to place
    the digit by; "grid": the enlargement's (width, height) in GRIDs (1, 1 for a digit). layers: a number's
    digits each alone, (n, H, W) like `digit` (their max): a thin pen writes each digit's own centre line."""
    size = (digit.shape[1] * GRID // 28, digit.shape[0] * GRID // 28)
    big = np.asarray(Image.fromarray(digit).resize(size, Image.BICUBIC)).astype(np.float32) / 255
    grid = np.array([size[0] / GRID, size[1] / GRID])
    if pen == THIN:  # the centre line, to be drawn at a fixed width in px at the photo's resolution
        # Digit by digit: the centre line of touching digits' ink taken as one shape merges them (a 1
        # touching a 2 became a spur of it, and the number lost a digit), where a pen draws each one whole.
        at = rng.uniform(0.35, 0.55)
        inks = [big] if layers is None else [
            np.asarray(Image.fromarray(one).resize(size, Image.BICUBIC)).astype(np.float32) / 255 for one in layers]
        nodes, edges = [np.zeros((0, 2))], [np.zeros((0, 2), np.int64)]
        for ink in inks:
            n, e = strokes.skeleton_graph(strokes.thin(ink > at))
            nodes.append(strokes.smooth(n, e))
            edges.append(e + sum(map(len, nodes[:-1])))
        nodes, edges = np.concatenate(nodes), np.concatenate(edges)
        return {"nodes": nodes, "edges": edges, "points": nodes, "grid": grid}
    if pen == MARKER:  # MNIST's strokes thickened by 3-8 grid px, solid, with lighter streaks
        alpha = strokes.dilate(np.clip((big - 0.3) / 0.3, 0, 1), rng.uniform(1.5, 4.0))
        alpha *= 1 - rng.uniform(0, 0.3) * np.clip(_smooth_noise(rng, *big.shape, int(rng.integers(6, 15))), 0, 1)
    else:  # the MNIST grey levels as pen coverage, made a little thicker or thinner
        lo = rng.uniform(0.0, 0.35)
        alpha = np.clip((big - lo) / rng.uniform(0.25, 0.6), 0, 1)
    return {"alpha": alpha, "points": np.argwhere(alpha > 0.3)[:, ::-1].astype(float), "grid": grid}


def _digit_box(points: np.ndarray, hd: float, centre: np.ndarray, fwd: np.ndarray,
               grid=np.ones(2)) -> tuple[np.ndarray, np.ndarray]:
    """Frame (x, y) of the ink's bounding box, lowest and highest, with the digit `hd` px tall at plane
    `centre` (its bitmap `grid` (width, height) GRIDs)."""
    box = hd * 28 / 20
    q = _apply(fwd, centre - box / 2 * grid + (points + 0.5) * box / GRID)
    return q.min(0), q.max(0)


def _place(points, fwd, w: int, h: int, fill: float, close: bool, rng,
           grid=np.ones(2)) -> tuple[float, np.ndarray, dict]:
    """Height and plane centre of a digit that fills `fill` of the frame (its longer side, close-up) or that
    touches an edge of it: up to 1.5% of its extent short of it, or up to 6% of it cut off."""
    inv, size = np.linalg.inv(fwd), np.array([w, h], float)
    centre, hd = _apply(inv, size[None] / 2)[0], fill * min(w, h)
    frac, info = rng.uniform(-0.4, 0.4, 2), {}  # where in the room the frame leaves, from the middle
    if not close:
        side, out = int(rng.integers(4)), rng.uniform(-0.015, 0.06)
        info = {"edge": ["left", "right", "top", "bottom"][side], "cut": round(float(out), 4)}
    for _ in range(5):  # the homography is nearly a rotation: a few rounds converge
        lo, hi = _digit_box(points, hd, centre, fwd, grid)
        now = ((hi - lo) / size).max()
        hd *= (fill if close else min(now, 0.95)) / now
        lo, hi = _digit_box(points, hd, centre, fwd, grid)
        ext = hi - lo
        target = size / 2 + frac * (size - ext)
        if not close:
            ax = side // 2
            target[ax] = ext[ax] / 2 - out * ext[ax] if side % 2 == 0 else size[ax] - ext[ax] / 2 + out * ext[ax]
        here = _apply(fwd, centre[None])[0]
        centre = _apply(inv, (target - ((lo + hi) / 2 - here))[None])[0]
    return hd, centre, info


def _ink(ink: str, rng) -> tuple[np.ndarray, float]:
    """RGB and opacity of an ink (pencil: grey graphite, partly covering, and grainy: see render)."""
    u = rng.uniform
    rgb = {"blue": lambda: [u(0.05, 0.2), u(0.1, 0.3), u(0.45, 0.75)],
           "red": lambda: [u(0.5, 0.75), u(0.04, 0.2), u(0.06, 0.22)],
           "pencil": lambda: [u(0.25, 0.45)] * 3}.get(ink, lambda: [u(0.05, 0.2)] * 3)()
    return np.array(rgb, np.float32), u(0.65, 0.85) if ink == "pencil" else u(0.85, 1.0)


def _draw_thin(out: np.ndarray, k: int, fwd, pen: dict, hd: float, centre, extra: list, width: float, ink_rgb,
               opacity: float, gain: np.ndarray, sheet: np.ndarray, pencil: bool, rng) -> None:
    """Stroke the centre line (and the `extra` plane segments) `width` px wide into the final uint8 RGB image
    `out` (k times the base frame), lit by the base frame's `gain` (light x white balance, (h, w, 3)) and
    only on the sheet. Only the digit's window is touched."""
    box = hd * 28 / 20
    p = _apply(fwd, centre - box / 2 * pen["grid"] + (pen["nodes"] + 0.5) * box / GRID) * k
    a, b = p[pen["edges"][:, 0]], p[pen["edges"][:, 1]]
    if extra:
        a = np.concatenate([a, _apply(fwd, np.array([e[0] for e in extra])) * k])
        b = np.concatenate([b, _apply(fwd, np.array([e[1] for e in extra])) * k])
    ys, xs, alpha = strokes.pixels(out.shape[:2], a, b, width, rng.uniform(0.8, 1.5))
    alpha *= opacity
    h, w = sheet.shape
    by, bx = np.clip((ys + 0.5) / k - 0.5, 0, h - 1), np.clip((xs + 0.5) / k - 0.5, 0, w - 1)
    alpha *= _bilinear(sheet.astype(np.float32), by, bx)
    if pencil:
        alpha *= 1 - 0.45 * rng.random(len(alpha), dtype=np.float32)
    lit = ink_rgb * np.stack([_bilinear(gain[..., c], by, bx) for c in range(3)], 1)
    old = out[ys, xs].astype(np.float32) / 255
    out[ys, xs] = np.clip((old + alpha[:, None] * (lit - old)) * 255 + 0.5, 0, 255).astype(np.uint8)


def render(digit: np.ndarray | None, rng: np.random.Generator, kind: dict | None = None,
           layers: np.ndarray | None = None) -> tuple[bytes, dict]:
    """One photo-like JPEG of `digit` (uint8 (28, 28) white on black, or None for a blank photo).

    kind may fix any attribute of FAMILIES but rotation and jpeg, "blank": "paper" | "desk", and "turn": 90 |
    -90 (degrees counterclockwise: a landscape photo taken turned, a number along its long side); the rest
    are drawn from rng. `digit` may be a wider bitmap at MNIST's scale, a whole number (tests/numbers.py),
    with `layers`, its digits each alone (n, H, W) uint8: a thin pen writes each digit's own centre line.
    Returns the JPEG bytes and the attributes used (with the digit's box in the frame, "digit_box" (x0, y0,
    x1, y1) px, and a thin pen's width, "pen_px")."""
    kind = dict(kind or {})

    def pick(key, values=None, p=None):
        if kind.get(key):
            return kind[key]
        if values is None:
            values, p = FAMILIES[key], WEIGHTS.get(key)
        if p is None:
            return values[int(rng.integers(len(values)))]
        return values[min(int(np.searchsorted(np.cumsum(p), rng.random())), len(values) - 1)]

    blank = kind.get("blank")
    a = {"paper": pick("paper"), "pen": pick("pen") if digit is not None else kind.get("pen", "none")}
    a["ink"] = pick("ink", *INKS.get(a["pen"], INKS[MNIST_INK]))
    a["framing"] = "desk only" if blank == "desk" else pick("framing", FAMILIES["framing"][:2]) if blank else pick("framing")
    a.update(light=pick("light"), marks=pick("marks") if digit is not None else "digit only")
    a["white balance"], a["noise"] = pick("white balance"), pick("noise")
    thin, framing = a["pen"] == THIN, a["framing"]
    share = PHONE["blank" if digit is None else "digit"]
    if thin:  # a thin pen is a phone photo's
        a["resolution"] = kind.get("resolution") or PHONE_RES
    else:
        a["resolution"] = pick("resolution", FAMILIES["resolution"], [1 - share, share])
    # The digit's size: its 20 px MNIST body (hd px tall) as a share of the frame's shorter side; close up,
    # the share of the frame that its longer side fills.
    fill = rng.uniform(*{CLOSE: (0.6, 0.95), EDGE: (0.25, 0.85)}.get(framing, (0.12, 0.35)))
    # The frame: 480-800 px; or a phone's 1000-4000 px, made k times finer than a 500-800 px base frame
    # in which all but a thin pen is drawn. A thin pen's digit is at most RATIO strokes tall.
    k, width = 1, rng.uniform(1, 4) if thin else 0.0
    if a["resolution"] == PHONE_RES:
        top = 4000.0
        if thin:
            c = 1.0 if framing == CLOSE else 0.75
            top = RATIO * width / (fill * c)
            if top < 1000:
                width, top = fill * c * 1000 / RATIO, 1000.0
        big = rng.uniform(1000, min(top, 4000))
        k = int(np.ceil(big / 800))
        long = int(round(big / k))
    else:
        long = int(rng.integers(480, 801))
    landscape = rng.random() < 0.5 or kind.get("turn")  # turned: a number along the long side, upright
    h, w = (long * 3 // 4, long) if landscape else (long, long * 3 // 4)
    s = min(h, w)
    # Geometry: the plane of the paper (coordinates u, v in px) seen turned and in mild perspective.
    angle = rng.uniform(-10, 10)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    c, sn = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    centred = corners - [w / 2, h / 2]
    quad = centred @ np.array([[c, sn], [-sn, c]]) + [w / 2, h / 2] + rng.normal(0, 0.025 * s, (4, 2))
    inv, fwd = _homography(quad, corners), _homography(corners, quad)  # frame pixel -> plane, plane -> frame
    y = np.arange(h, dtype=np.float32)[:, None] + 0.5  # (h, 1) and (1, w) pixel centres
    x = np.arange(w, dtype=np.float32)[None, :] + 0.5
    den = inv[2, 0] * x + inv[2, 1] * y + inv[2, 2]
    inv = inv.astype(np.float32)
    u = (inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]) / den  # (h, w) plane coordinates of every pixel
    v = (inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]) / den
    # The sheet: all of the frame, or a rectangle of 30-90% of its area on a desk.
    if framing == DESK:
        area = rng.uniform(0.3, 0.9)
        r = rng.uniform(0.85, 1.15)
        sw, sh = min(w * np.sqrt(area) * r, w * 1.05), min(h * np.sqrt(area) / r, h * 1.05)
        cx = w / 2 + rng.uniform(-1, 1) * max(0.0, (w - sw) / 2) * 0.8
        cy = h / 2 + rng.uniform(-1, 1) * max(0.0, (h - sh) / 2) * 0.8
        sheet = (np.abs(u - cx) < sw / 2) & (np.abs(v - cy) < sh / 2)
    else:
        sw, sh, cx, cy = w, h, w / 2, h / 2
        sheet = np.full((h, w), framing != "desk only")
    # The digit's size and place: near the middle of the sheet; or filling the frame, or at its edge.
    pen = _pen(digit, a["pen"], rng, layers) if digit is not None else None
    if pen is not None and framing in (CLOSE, EDGE):
        hd, (dx, dy), info = _place(pen["points"], fwd, w, h, fill, framing == CLOSE, rng, pen["grid"])
        a.update(info)
    else:  # (a number's bitmap is gw x gh GRIDs: it fits the sheet as a digit does)
        gw, gh = pen["grid"] if pen is not None else (1.0, 1.0)
        hd = min(fill * s, 0.55 * min(sw / gw, sh / gh))
        dx = cx + rng.uniform(-1, 1) * max(0.0, sw / 2 - hd * 1.12 * gw) * 0.35
        dy = cy + rng.uniform(-1, 1) * max(0.0, sh / 2 - hd * 1.12 * gh) * 0.35
    box = hd * 28 / 20  # the 28 px MNIST box
    bw, bh = (box * pen["grid"]) if pen is not None else (box, box)  # the bitmap's plane extent
    # Paper: white-ish, a tint; rules or a grid in light blue, grey or green.
    paper_rgb = rng.uniform(0.82, 0.97) * np.array([1, rng.uniform(0.97, 1), rng.uniform(0.88, 1)], np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = paper_rgb
    if a["paper"] != "plain":
        line_rgb = [np.array([rng.uniform(0.45, 0.7), rng.uniform(0.65, 0.85), rng.uniform(0.85, 1.0)]),
                    np.full(3, rng.uniform(0.6, 0.75)), np.array([rng.uniform(0.55, 0.7), rng.uniform(0.75, 0.85), rng.uniform(0.6, 0.75)])
                    ][rng.integers(3)].astype(np.float32)
        if a["paper"] == "lined":
            cover = _line_cover(v, hd * rng.uniform(0.45, 1.1), rng.uniform(0, 100), rng.uniform(0.8, 2.2))
        else:
            sp, lw = hd * rng.uniform(0.25, 0.6), rng.uniform(0.7, 1.8)
            cover = np.maximum(_line_cover(v, sp, rng.uniform(0, 100), lw), _line_cover(u, sp, rng.uniform(0, 100), lw))
        cover *= rng.uniform(0.6, 0.95)
        img += cover[..., None] * (line_rgb - img)
    # Ink: MNIST's grey levels or a marker's strokes, enlarged; a thin pen is drawn later, at full size.
    ink_alpha = np.zeros((h, w), np.float32)
    if pen is not None and not thin:
        inside = np.nonzero((np.abs(u - dx) < bw / 2) & (np.abs(v - dy) < bh / 2))
        pu = (u[inside] - (dx - bw / 2)) / box * GRID - 0.5
        pv = (v[inside] - (dy - bh / 2)) / box * GRID - 0.5
        ink_alpha[inside] = _bilinear(pen["alpha"], pv, pu)
        if a["pen"] == MARKER and box / GRID > 1.5:  # a marker's edge is sharp, however much it is enlarged
            ink_alpha[inside] = np.clip((ink_alpha[inside] - 0.5) * box / GRID / 1.5 + 0.5, 0, 1)
    extra = []  # a thin pen's second mark: plane segments
    if a["marks"] != "digit only":
        if rng.random() < 0.5:  # specks of dust or graphite: 1-6 dots, 1-3 px across
            for _ in range(rng.integers(1, 7)):
                px, py = int(rng.uniform(0.05, 0.95) * w), int(rng.uniform(0.05, 0.95) * h)
                win = np.s_[py - 3:py + 4, px - 3:px + 4]
                dot = np.clip(rng.uniform(0.6, 1.6) - np.hypot(x[:, px - 3:px + 4] - px, y[py - 3:py + 4] - py), 0, 1)
                ink_alpha[win] = np.maximum(ink_alpha[win], dot)
        else:  # a second, smaller mark away from the digit: a short stroke, in the same pen
            ang = rng.uniform(0, np.pi)
            dist = rng.uniform(1.2, 1.8) * box
            mx, my = dx + dist * np.cos(rng.uniform(0, 2 * np.pi)) * (bw / box), dy + dist * np.sin(rng.uniform(0, 2 * np.pi)) * (bh / box)
            half, lw = rng.uniform(0.1, 0.25) * hd, max(1.5, hd * rng.uniform(0.05, 0.1))
            if thin:
                step = half * np.array([np.cos(ang), np.sin(ang)])
                extra.append(([mx, my] - step, [mx, my] + step))
            else:
                along = (u - mx) * np.cos(ang) + (v - my) * np.sin(ang)
                across = -(u - mx) * np.sin(ang) + (v - my) * np.cos(ang)
                ink_alpha = np.maximum(ink_alpha, np.clip(lw / 2 + 0.5 - np.abs(across), 0, 1) * (np.abs(along) < half))
    ink_rgb, opacity = _ink(a["ink"], rng)
    if a["pen"] == MARKER:
        opacity = rng.uniform(0.92, 1.0)
    if a["ink"] == "pencil" and not thin:
        ink_alpha *= 1 - 0.45 * rng.random((h, w), dtype=np.float32)
    ink_alpha *= opacity * sheet
    if (pen is not None and not thin) or a["marks"] != "digit only":
        img += ink_alpha[..., None] * (ink_rgb - img)
    # The desk around the sheet: dark wood, grey or black, with a soft grain.
    if not sheet.all():
        desk_rgb = [np.array([0.36, 0.24, 0.14]), np.array([0.3, 0.3, 0.32]), np.array([0.1, 0.1, 0.11]),
                    np.array([0.18, 0.28, 0.22])][rng.integers(4)] * rng.uniform(0.6, 1.1)
        grain = 1 + 0.08 * _smooth_noise(rng, h, w, 6) + 0.04 * np.sin(v * rng.uniform(0.05, 0.2) + 3 * _smooth_noise(rng, h, w, 3))
        img = np.where(sheet[..., None], img, desk_rgb.astype(np.float32) * grain[..., None])
    # Light: a gradient in any direction, and a soft shadow (a straight edge or a round blob).
    t = rng.uniform(0, 2 * np.pi)
    ramp = ((x - w / 2) * np.cos(t) + (y - h / 2) * np.sin(t)) / s  # about -0.8..0.8
    light = 1 - rng.uniform(0.1, 0.4) * (ramp - ramp.min()) / (ramp.max() - ramp.min())
    if a["light"] == "gradient + shadow":
        soft = rng.uniform(0.02, 0.12) * s  # px of the penumbra
        if rng.random() < 0.5:  # a straight shadow edge (a wall, a phone) across the frame
            t2 = rng.uniform(0, 2 * np.pi)
            edge = ((x - rng.uniform(0.2, 0.8) * w) * np.cos(t2) + (y - rng.uniform(0.2, 0.8) * h) * np.sin(t2)) / soft
        else:  # a round blob (a hand)
            r0 = rng.uniform(0.3, 0.6) * s
            edge = (r0 - np.hypot(x - rng.uniform(0, 1) * w, y - rng.uniform(0, 1) * h)) / soft
        light *= 1 - rng.uniform(0.2, 0.45) / (1 + np.exp(-np.clip(edge, -30, 30)))
    # White balance: the camera's idea of white, neutral or tinting the whole photo yellow or blue.
    wb = {"neutral": [1, 1, 1], "yellowish": [1, rng.uniform(0.92, 0.98), rng.uniform(0.7, 0.85)],
          "bluish": [rng.uniform(0.8, 0.9), rng.uniform(0.92, 0.98), 1]}[a["white balance"]]
    gain = (light * rng.uniform(0.9, 1.1))[..., None] * np.array(wb, np.float32)
    img *= gain
    # The camera: a little blur sometimes; k times finer for a phone, a thin pen; sensor noise; JPEG.
    if rng.random() < 0.5:
        img[1:-1, 1:-1] = (img[1:-1, 1:-1] * 2 + img[:-2, 1:-1] + img[2:, 1:-1] + img[1:-1, :-2] + img[1:-1, 2:]) / 6
    out = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    if k > 1:
        out = np.array(Image.fromarray(out).resize((w * k, h * k), Image.BILINEAR))
    if pen is not None:
        lo, hi = _digit_box(pen["points"], hd, np.array([dx, dy]), fwd, pen["grid"])
        a["digit_box"] = tuple(int(round(float(q))) for q in np.concatenate([lo * k - width / 2, hi * k + width / 2]))
    if thin and pen is not None:
        a["pen_px"] = round(float(width), 2)
        # A number's strokes from a draw of their own: how many pixels a pencil's grain takes depends on its
        # digits' centre lines, and the photos after it stay the same whatever they are.
        _draw_thin(out, k, fwd, pen, hd, np.array([dx, dy]), extra, width, ink_rgb, opacity, gain, sheet,
                   a["ink"] == "pencil", rng if layers is None else np.random.default_rng(int(rng.integers(1 << 62))))
    if kind.get("turn"):  # the frame turned: a box's (x, y) -> (y, W - x) counterclockwise, (H - y, x) clockwise
        ccw, (bx0, by0, bx1, by1) = kind["turn"] > 0, a.get("digit_box", (0, 0, 0, 0))
        a["digit_box"] = (by0, w * k - bx1, by1, w * k - bx0) if ccw else (h * k - by1, bx0, h * k - by0, bx1)
        out, (w, h), a["turn"] = np.ascontiguousarray(np.rot90(out, 1 if ccw else -1)), (h, w), kind["turn"]
    _add_noise(out, rng, a["noise"] == "high")
    quality = int(rng.integers(50, 96))
    a.update(angle=round(float(angle), 2), quality=quality, size=(w * k, h * k), blank=blank,
             rotation=FAMILIES["rotation"][abs(angle) >= 5], jpeg=FAMILIES["jpeg"][quality >= 75])
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, "JPEG", quality=quality)
    return buf.getvalue(), a


def photo_set(n: int = 1200, blanks: int = 100, seed: int = 0, data_dir=None):
    """n photos of the first n MNIST test digits and `blanks` blank photos (half paper, half desk), all
    random with `seed` -> list of (jpeg bytes, label or None, attributes)."""
    from src.data import load_mnist
    from tests.conftest import DATA

    images, labels = load_mnist(data_dir or DATA, train=False)  # TEST digits only
    rng = np.random.default_rng(seed)
    out = [(*render(images[i].numpy(), rng), int(labels[i])) for i in range(n)]
    out = [(b, lab, a) for b, a, lab in out]
    for i in range(blanks):
        b, a = render(None, rng, {"blank": "desk" if i % 2 else "paper"})
        out.append((b, None, a))
    return out


def write(photos, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (blob, label, _) in enumerate(photos):
        paths.append(folder / f"{i:05d}-{'blank' if label is None else label}.jpg")
        paths[-1].write_bytes(blob)
    return paths


def table(photos, predicted) -> list[tuple[str, int, int]]:
    """Rows (family, n, correct) over the digit photos; predicted: digit or None per photo."""
    rows = [("all", 0, 0)]
    for key, values in FAMILIES.items():
        rows += [(f"{key}: {v}", 0, 0) for v in values]
    counts = {r[0]: [0, 0] for r in rows}
    for (_, label, a), p in zip(photos, predicted):
        if label is None:
            continue
        for name in ["all"] + [f"{k}: {a[k]}" for k in FAMILIES]:
            counts[name][0] += 1
            counts[name][1] += p == label
    return [(name, *counts[name]) for name, *_ in rows]


def classify(model, paths, threads: int = 1, numbers: bool = False):
    """Each path -> its digit, or None when the predictor answers "no digit found"; with numbers, read()
    instead of predict(): (its digit, its number) each, (None, None) for no digit."""
    from export.predict import DigitClassifier, ImageError

    clf = DigitClassifier(model, threads=threads)
    out = []
    for p in paths:
        try:
            if numbers:
                r = clf.read(p)
                out.append((r["digit"], r["number"]))
            else:
                out.append(clf.predict([p])[0].digit)
        except ImageError as e:
            if "no digit found" not in str(e):
                raise
            out.append((None, None) if numbers else None)
    return out


def gallery(model, out: Path, seed: int = 7) -> None:
    """A small PNG: a few photos of each family, what the model saw, and its answer (the --explain panels)."""
    from export.predict import DigitClassifier, explain_panel

    clf = DigitClassifier(model, threads=1)
    rng = np.random.default_rng(seed)
    from src.data import load_mnist
    from tests.conftest import DATA

    images, labels = load_mnist(DATA, train=False)
    kinds = [{"paper": "lined", "ink": "blue", "framing": FILLS, "pen": MNIST_INK},
             {"paper": "grid", "ink": "black", "framing": DESK, "light": "gradient + shadow", "pen": MNIST_INK},
             {"paper": "plain", "ink": "pencil", "framing": DESK, "marks": "specks or a second mark", "pen": MNIST_INK},
             {"paper": "grid", "ink": "pencil", "light": "gradient + shadow", "pen": MNIST_INK},
             {"paper": "lined", "ink": "blue", "framing": FILLS, "pen": THIN, "white balance": "yellowish"},
             {"paper": "grid", "ink": "black", "framing": DESK, "pen": THIN},
             {"paper": "plain", "ink": "blue", "framing": CLOSE, "pen": MARKER, "noise": "high"},
             {"paper": "lined", "ink": "red", "framing": EDGE, "pen": MARKER, "white balance": "bluish"},
             {"paper": "lined", "ink": "black", "framing": DESK, "pen": MNIST_INK},
             {"blank": "paper", "paper": "lined", "framing": DESK, "resolution": PHONE_RES}]
    panels = []
    for i, kind in enumerate(kinds):
        digit = None if kind.get("blank") else images[100 + i].numpy()
        blob, _ = render(digit, rng, kind)
        img = Image.open(io.BytesIO(blob))
        panels.append(explain_panel(clf, img, f"{'blank' if digit is None else 'label ' + str(int(labels[100 + i]))}"))
    w, h = panels[0].size
    sheet = Image.new("RGB", (w * 2, h * ((len(panels) + 1) // 2)), "white")
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % 2) * w, (i // 2) * h))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="an exported .onnx: print the per-family accuracy table")
    ap.add_argument("--n", type=int, default=1200, help="digit photos (the first n MNIST test digits)")
    ap.add_argument("--blanks", type=int, default=100, help="blank photos, half paper only, half desk only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write the JPEG files here (default: a temporary folder)")
    ap.add_argument("--gallery", type=Path, help="write the README gallery PNG here (needs --model)")
    ap.add_argument("--numbers", action="store_true",
                    help="read each photo as a number (read()) too: count the digit photos read as more than their digit")
    args = ap.parse_args(argv)
    if args.gallery:
        gallery(args.model, args.gallery)
        print(f"wrote {args.gallery}")
        return 0
    t0 = time.perf_counter()
    photos = photo_set(args.n, args.blanks, args.seed)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write(photos, args.out or Path(tmp))
        print(f"{len(photos)} photos generated in {t1 - t0:.1f} s (seed {args.seed})", file=sys.stderr)
        if not args.model:
            return 0
        predicted = classify(args.model, paths, numbers=args.numbers)
        if args.numbers:
            predicted, numbers = [d for d, _ in predicted], [n for _, n in predicted]
    t2 = time.perf_counter()
    print(f"classified in {t2 - t1:.1f} s ({(t2 - t1) / len(photos) * 1000:.1f} ms per photo, 1 thread)", file=sys.stderr)
    print("| family | n | correct | accuracy |\n| --- | ---: | ---: | ---: |")
    for name, n, ok in table(photos, predicted):
        print(f"| {name} | {n} | {ok} | {100 * ok / max(n, 1):.1f}% |")
    blank = [(a["framing"], p) for (_, label, a), p in zip(photos, predicted) if label is None]
    said = sum(p is not None for _, p in blank)
    print(f"| blank photos (paper only, desk only): answered a digit | {len(blank)} | {said} | |")
    if args.numbers:  # a single digit reads as itself: its number is its digit, no stray mark read beside it
        found = [(d, n) for (_, label, _), d, n in zip(photos, predicted, numbers) if label is not None and d is not None]
        more = sum(n != str(d) for d, n in found)
        print(f"| digit photos read as a number other than their digit (read()) | {len(found)} | {more} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
