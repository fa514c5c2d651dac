"""Photo-like test images: MNIST TEST digits written on paper and photographed with a phone.

Each image is an MNIST test digit (never a training digit) drawn as pen or pencil ink on plain, lined or
grid paper; the sheet either fills the frame or lies on a darker desk (30-90% of the frame); a lighting
gradient always, a soft shadow often; the sheet turned by up to +-10 degrees and seen in mild perspective;
sometimes specks of dust or a second, smaller mark; sensor noise, sometimes a little blur; saved as JPEG.
Blank photos (paper only, desk only) have no digit. Every parameter is drawn from numpy's default_rng
with a fixed seed, so a seed names a set of images exactly.

    python -m tests.photos --model artifacts/mnist.onnx            # the per-family accuracy table
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

FAMILIES = {  # attribute -> its values; every image has one value of each
    "paper": ["plain", "lined", "grid"],
    "ink": ["black", "blue", "pencil"],
    "framing": ["sheet fills the frame", "sheet on a desk"],
    "light": ["gradient", "gradient + shadow"],
    "marks": ["digit only", "specks or a second mark"],
    "rotation": ["|angle| < 5 deg", "|angle| 5-10 deg"],
    "jpeg": ["quality 50-74", "quality 75-95"],
}


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with dst ~ H @ src for four (x, y) point pairs."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        b += [u, v]
    return np.append(np.linalg.solve(np.array(a, float), np.array(b, float)), 1).reshape(3, 3)


def _smooth_noise(rng, h: int, w: int, cells: int) -> np.ndarray:
    """(h, w) float32 smooth random field in about [-1, 1]: a coarse random grid, bilinearly enlarged."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.BILINEAR))


def _line_cover(t: np.ndarray, spacing: float, offset: float, width: float) -> np.ndarray:
    """Coverage in [0, 1] of lines `width` px wide every `spacing` px along coordinate t (antialiased)."""
    dist = np.abs((t - offset) % spacing - spacing / 2)  # distance from the nearest line, which sits mid-period
    dist = spacing / 2 - dist
    return np.clip(width / 2 + 0.5 - dist, 0, 1)


def render(digit: np.ndarray | None, rng: np.random.Generator, kind: dict | None = None) -> tuple[bytes, dict]:
    """One photo-like JPEG of `digit` (uint8 (28, 28) white on black, or None for a blank photo).

    kind may fix attributes ("paper", "ink", "framing", "light", "marks", and "blank": "paper" | "desk");
    the rest are drawn from rng. Returns the JPEG bytes and the attributes used."""
    kind = dict(kind or {})
    pick = lambda key: kind.get(key) or FAMILIES[key][rng.integers(len(FAMILIES[key]))]  # noqa: E731
    blank = kind.get("blank")
    a = {"paper": pick("paper"), "ink": pick("ink"), "framing": pick("framing"), "light": pick("light"),
         "marks": pick("marks") if digit is not None else "digit only"}
    if blank == "desk":
        a["framing"] = "desk only"
    long = int(rng.integers(480, 801))
    h, w = (long * 3 // 4, long) if rng.random() < 0.5 else (long, long * 3 // 4)
    s = min(h, w)
    # Geometry: the plane of the paper (coordinates u, v in px) seen turned and in mild perspective.
    angle = rng.uniform(-10, 10)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    c, sn = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    centred = corners - [w / 2, h / 2]
    quad = centred @ np.array([[c, sn], [-sn, c]]) + [w / 2, h / 2] + rng.normal(0, 0.025 * s, (4, 2))
    inv = _homography(quad, corners)  # frame pixel -> plane
    y = np.arange(h, dtype=np.float32)[:, None] + 0.5  # (h, 1) and (1, w) pixel centres
    x = np.arange(w, dtype=np.float32)[None, :] + 0.5
    den = inv[2, 0] * x + inv[2, 1] * y + inv[2, 2]
    inv = inv.astype(np.float32)
    u = (inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]) / den  # (h, w) plane coordinates of every pixel
    v = (inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]) / den
    # The sheet: all of the frame, or a rectangle of 30-90% of its area on a desk.
    if a["framing"] == "sheet on a desk":
        area = rng.uniform(0.3, 0.9)
        r = rng.uniform(0.85, 1.15)
        sw, sh = min(w * np.sqrt(area) * r, w * 1.05), min(h * np.sqrt(area) / r, h * 1.05)
        cx = w / 2 + rng.uniform(-1, 1) * max(0.0, (w - sw) / 2) * 0.8
        cy = h / 2 + rng.uniform(-1, 1) * max(0.0, (h - sh) / 2) * 0.8
        sheet = (np.abs(u - cx) < sw / 2) & (np.abs(v - cy) < sh / 2)
    elif a["framing"] == "desk only":
        sw, sh, cx, cy = w, h, w / 2, h / 2
        sheet = np.zeros((h, w), bool)
    else:
        sw, sh, cx, cy = w, h, w / 2, h / 2
        sheet = np.ones((h, w), bool)
    # The digit's size and place: its 20 px MNIST body is `hd` px tall, near the middle of the sheet.
    hd = rng.uniform(0.12, 0.35) * s
    hd = min(hd, 0.55 * min(sw, sh))
    box = hd * 28 / 20  # the 28 px MNIST box
    dx = cx + rng.uniform(-1, 1) * max(0.0, sw / 2 - box * 0.8) * 0.35
    dy = cy + rng.uniform(-1, 1) * max(0.0, sh / 2 - box * 0.8) * 0.35
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
            sp, width = hd * rng.uniform(0.25, 0.6), rng.uniform(0.7, 1.8)
            cover = np.maximum(_line_cover(v, sp, rng.uniform(0, 100), width), _line_cover(u, sp, rng.uniform(0, 100), width))
        cover *= rng.uniform(0.6, 0.95)
        img += cover[..., None] * (line_rgb - img)
    # Ink: the MNIST grey levels as pen coverage, enlarged smoothly, made a little thicker or thinner.
    ink_alpha = np.zeros((h, w), np.float32)
    if digit is not None:
        big = np.asarray(Image.fromarray(digit).resize((112, 112), Image.BICUBIC)).astype(np.float32) / 255
        lo = rng.uniform(0.0, 0.35)
        big = np.clip((big - lo) / rng.uniform(0.25, 0.6), 0, 1)
        inside = np.nonzero((np.abs(u - dx) < box / 2) & (np.abs(v - dy) < box / 2))
        pu = (u[inside] - (dx - box / 2)) / box * 112 - 0.5
        pv = (v[inside] - (dy - box / 2)) / box * 112 - 0.5
        ink_alpha[inside] = _bilinear(big, pv, pu)
    if a["marks"] != "digit only":
        if rng.random() < 0.5:  # specks of dust or graphite: 1-6 dots, 1-3 px across
            for _ in range(rng.integers(1, 7)):
                px, py = int(rng.uniform(0.05, 0.95) * w), int(rng.uniform(0.05, 0.95) * h)
                win = np.s_[py - 3:py + 4, px - 3:px + 4]
                dot = np.clip(rng.uniform(0.6, 1.6) - np.hypot(x[:, px - 3:px + 4] - px, y[py - 3:py + 4] - py), 0, 1)
                ink_alpha[win] = np.maximum(ink_alpha[win], dot)
        else:  # a second, smaller mark away from the digit: a short stroke
            ang = rng.uniform(0, np.pi)
            dist = rng.uniform(1.2, 1.8) * box
            mx, my = dx + dist * np.cos(rng.uniform(0, 2 * np.pi)), dy + dist * np.sin(rng.uniform(0, 2 * np.pi))
            half, width = rng.uniform(0.1, 0.25) * hd, max(1.5, hd * rng.uniform(0.05, 0.1))
            along = (u - mx) * np.cos(ang) + (v - my) * np.sin(ang)
            across = -(u - mx) * np.sin(ang) + (v - my) * np.cos(ang)
            ink_alpha = np.maximum(ink_alpha, np.clip(width / 2 + 0.5 - np.abs(across), 0, 1) * (np.abs(along) < half))
    if a["ink"] == "black":
        ink_rgb, opacity = np.full(3, rng.uniform(0.05, 0.2), np.float32), rng.uniform(0.85, 1.0)
    elif a["ink"] == "blue":
        ink_rgb = np.array([rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.3), rng.uniform(0.45, 0.75)], np.float32)
        opacity = rng.uniform(0.85, 1.0)
    else:  # pencil: grey graphite, partly covering, grainy
        ink_rgb, opacity = np.full(3, rng.uniform(0.25, 0.45), np.float32), rng.uniform(0.65, 0.85)
        ink_alpha *= 1 - 0.45 * rng.random((h, w), dtype=np.float32)
    ink_alpha *= opacity * sheet
    if digit is not None or a["marks"] != "digit only":
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
    img *= (light * rng.uniform(0.9, 1.1))[..., None]
    # The camera: a little blur sometimes, sensor noise, 8 bits, JPEG.
    if rng.random() < 0.5:
        img[1:-1, 1:-1] = (img[1:-1, 1:-1] * 2 + img[:-2, 1:-1] + img[2:, 1:-1] + img[1:-1, :-2] + img[1:-1, 2:]) / 6
    img += rng.uniform(0.004, 0.02) * rng.standard_normal((h, w, 1), dtype=np.float32)
    quality = int(rng.integers(50, 96))
    a.update(angle=round(float(angle), 2), quality=quality, size=(w, h), blank=blank,
             rotation=FAMILIES["rotation"][abs(angle) >= 5], jpeg=FAMILIES["jpeg"][quality >= 75])
    buf = io.BytesIO()
    Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue(), a


def _bilinear(img: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """img (H, W) sampled at float pixel coordinates (centres at integers); 0 outside."""
    hh, ww = img.shape
    p = np.pad(img, 1)
    py, px = np.clip(py + 1, 0, hh + 0.999), np.clip(px + 1, 0, ww + 0.999)
    y0, x0 = py.astype(int), px.astype(int)
    fy, fx = py - y0, px - x0
    y1, x1 = np.minimum(y0 + 1, hh + 1), np.minimum(x0 + 1, ww + 1)
    return ((p[y0, x0] * (1 - fx) + p[y0, x1] * fx) * (1 - fy) + (p[y1, x0] * (1 - fx) + p[y1, x1] * fx) * fy)


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


def classify(model, paths, threads: int = 1):
    """Each path -> its digit, or None when the predictor answers "no digit found"."""
    from export.predict import DigitClassifier, ImageError

    clf = DigitClassifier(model, threads=threads)
    out = []
    for p in paths:
        try:
            out.append(clf.predict([p])[0].digit)
        except ImageError as e:
            if "no digit found" not in str(e):
                raise
            out.append(None)
    return out


def gallery(model, out: Path, seed: int = 7) -> None:
    """A small PNG: a few photos of each family, what the model saw, and its answer (the --explain panels)."""
    from export.predict import DigitClassifier, explain_panel

    clf = DigitClassifier(model, threads=1)
    rng = np.random.default_rng(seed)
    from src.data import load_mnist
    from tests.conftest import DATA

    images, labels = load_mnist(DATA, train=False)
    kinds = [{"paper": "lined", "ink": "blue", "framing": "sheet fills the frame"},
             {"paper": "grid", "ink": "black", "framing": "sheet on a desk", "light": "gradient + shadow"},
             {"paper": "plain", "ink": "pencil", "framing": "sheet on a desk", "marks": "specks or a second mark"},
             {"paper": "grid", "ink": "pencil", "light": "gradient + shadow"},
             {"paper": "lined", "ink": "black", "framing": "sheet on a desk"},
             {"blank": "paper", "paper": "lined", "framing": "sheet on a desk"}]
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
        predicted = classify(args.model, paths)
    t2 = time.perf_counter()
    print(f"classified in {t2 - t1:.1f} s ({(t2 - t1) / len(photos) * 1000:.1f} ms per photo, 1 thread)", file=sys.stderr)
    print("| family | n | correct | accuracy |\n| --- | ---: | ---: | ---: |")
    for name, n, ok in table(photos, predicted):
        print(f"| {name} | {n} | {ok} | {100 * ok / max(n, 1):.1f}% |")
    blank = [(a["framing"], p) for (_, label, a), p in zip(photos, predicted) if label is None]
    said = sum(p is not None for _, p in blank)
    print(f"| blank photos (paper only, desk only): answered a digit | {len(blank)} | {said} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
