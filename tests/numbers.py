"""Whole handwritten numbers for the number reader (issue 22): MNIST TEST digits written side by side.

A number is 2-8 MNIST test digits (never training digits) written as a hand writes them, by src/lines.py:
each digit 80-120% of the writer's size, all slanted alike (a shear of up to +-0.3, each digit +-0.05 from
it), sitting on a baseline that drifts (up to +-5% of the run, +-1 px per digit); gaps between neighbours
from 1 px to half a digit wide (1-7.5 px at MNIST's scale, a digit 20 px tall), or touching: 13% of the pairs
overlap by 1-2 px of ink. Sometimes (10%) a second line; sometimes (15%) turned 90 degrees either way
(written along the sheet's long side). Each number is either a clean scan (dark ink on white paper, 28-96
px per digit, PNG) or a photo: tests/photos.py's render() on all its families but "digit touches an edge" (a
cut-off number would have no truth; a thin pen writes each digit's own centre line, touching or not), or
(kind "page") the clean scan small on a white 12 MP page, a digit 2-5% of its short side, as a number
written on a sheet photographed whole. The same seed gives the same numbers for every kind.

    python -m tests.numbers --model artifacts/mnist.onnx                   # both kinds, 300 each, per family
    python -m tests.numbers --model artifacts/mnist.onnx --n 300 --seed 0 --markdown
    python -m tests.numbers --model artifacts/mnist.onnx --kind page       # the clean scans, small on a 12 MP page
    python -m tests.numbers --write /tmp/numbers --n 40                    # just the images, for a look
    python -m tests.numbers --gallery /tmp/numbers.png [--model ...]       # a contact sheet (with readings)
    python -m tests.numbers --model artifacts/mnist.onnx --seed 5 --set split_tries=24   # try another number
                                                                           # of the reader (export/reader/params.py)

Scores: a number is right when the reading equals the truth exactly (lines joined by one space); digits
right = 1 - (edit distance between the digit strings, spaces left out) / (truth's digits), over all numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from src.lines import line_of, writer
from tests.photos import CLOSE, DESK, FAMILIES, FILLS, render

PAGE, PAGE_SHARE = (4000, 3000), (0.02, 0.05)  # kind "page": a 12 MP photo, a digit 2-5% of its short side
#                                                (4-10 mm on an A4 sheet that fills the frame)
TWO_LINES, TURNED = 0.1, 0.15  # shares of two-line and turned numbers
FRAMINGS = ([FILLS, DESK, CLOSE], [0.375, 0.375, 0.25])  # photos.WEIGHTS' framings without the edge
_MNIST: dict = {}


def _test_digits(data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The 10k MNIST test images (N, 28, 28) uint8 and labels (N,), as tests/photos.py loads them."""
    if data_dir not in _MNIST:
        from src.data import load_mnist
        from tests.conftest import DATA

        images, labels = load_mnist(data_dir or DATA, train=False)  # TEST digits only
        _MNIST[data_dir] = images.numpy(), labels.numpy()
    return _MNIST[data_dir]


def compose(rng, digits=(4, 6), two_lines: float = TWO_LINES, turned: float = TURNED, data_dir=None):
    """A random number -> (bitmap (H, W) uint8 white on black at MNIST's scale, a digit ~20 px tall with 4 px
    margins; meta): "number" (lines joined by one space), "turned" (0, 90 or -90 degrees counterclockwise;
    the bitmap is turned), "lines", "touching" (pairs whose inks meet), "indices" (the MNIST test digits),
    "boxes" (each digit's (x0, y0, x1, y1) in the bitmap, in reading order), "layers" (each digit's own ink
    alone, (digits, H, W) uint8, turned alike: the bitmap is their pixelwise max)."""
    images, labels = _test_digits(data_dir)
    size, slant = writer(rng)
    lines = 2 if rng.random() < two_lines else 1
    out, truth, used, boxes, touching, top, pieces = [], [], [], [], 0, 0, []
    for _ in range(lines):
        idx = rng.integers(len(images), size=int(rng.integers(digits[0], digits[1] + 1)))
        canvas, bx, touch, text, inks = line_of(images, labels, idx, size, slant, rng)
        pieces += inks
        ys, xs = np.nonzero(canvas > 0.02)
        canvas, (cy, cx) = canvas[ys.min():ys.max() + 1, xs.min():xs.max() + 1], (ys.min(), xs.min())
        indent = int(rng.integers(-4, 13)) if out else 0
        out.append((canvas, top, indent))
        touching += touch
        boxes += [(x0 - cx + indent, y0 - cy + top, x1 - cx + indent, y1 - cy + top) for x0, y0, x1, y1 in bx]
        truth.append(text)
        used += [int(i) for i in idx]
        top += canvas.shape[0] + int(rng.integers(3, 11))  # the leading: 3-10 px between the lines' ink
    left = min(ind for _, _, ind in out)
    m = 4  # margin, px
    h = max(t + c.shape[0] for c, t, _ in out) + 2 * m
    w = max(ind - left + c.shape[1] for c, _, ind in out) + 2 * m
    bitmap = np.zeros((h, w), np.float32)
    for c, t, ind in out:
        win = bitmap[m + t:m + t + c.shape[0], m + ind - left:m + ind - left + c.shape[1]]
        np.maximum(win, c, out=win)
    boxes = [(int(x0 - left + m), int(y0 + m), int(x1 - left + m), int(y1 + m)) for x0, y0, x1, y1 in boxes]
    layers = layers_of(pieces, boxes, (h, w))
    turn = int(rng.choice([90, -90])) if rng.random() < turned else 0
    bitmap = np.rint(np.clip(bitmap, 0, 1) * 255).astype(np.uint8)
    if turn:  # a box's (x, y) -> (y, w - x) counterclockwise, (h - y, x) clockwise
        bitmap = np.ascontiguousarray(np.rot90(bitmap, 1 if turn > 0 else -1))
        layers = np.ascontiguousarray(np.rot90(layers, 1 if turn > 0 else -1, axes=(1, 2)))
        boxes = [(y0, w - x1, y1, w - x0) if turn > 0 else (h - y1, x0, h - y0, x1) for x0, y0, x1, y1 in boxes]
    meta = {"number": " ".join(truth), "turned": turn, "lines": lines, "touching": int(touching),
            "indices": used, "boxes": boxes, "layers": layers}
    return bitmap, meta


def layers_of(inks: list[np.ndarray], boxes, shape) -> np.ndarray:
    """Each digit's own ink (h, w) float in [0, 1] at its box (x0, y0, x1, y1), the box its ink's size, on a
    canvas of `shape` (H, W) -> (digits, H, W) uint8: the digits each alone, as the bitmap holds them."""
    layers = np.zeros((len(inks), *shape), np.float32)
    for layer, (x0, y0, x1, y1), ink in zip(layers, boxes, inks):
        layer[y0:y1, x0:x1] = ink
    return np.rint(np.clip(layers, 0, 1) * 255).astype(np.uint8)


def scan(bitmap: np.ndarray, rng) -> tuple[bytes, dict]:
    """A clean scan of the bitmap: dark ink (0-50) on white paper (240-255), a digit 28-96 px tall, margins
    of 0.3-1.5 digits, no photo effects -> PNG bytes and {"scale": px per MNIST px, "offset": (x, y)}."""
    f = rng.uniform(28, 96) / 20
    h, w = bitmap.shape
    ink = np.asarray(Image.fromarray(bitmap).resize((round(w * f), round(h * f)), Image.BICUBIC), np.float32) / 255
    mx, my = (rng.uniform(0.3, 1.5, 2) * 20 * f).astype(int)
    paper, dark = rng.uniform(240, 255), rng.uniform(0, 50)
    page = np.full((ink.shape[0] + 2 * my, ink.shape[1] + 2 * mx), paper, np.float32)
    page[my:my + ink.shape[0], mx:mx + ink.shape[1]] -= ink * (paper - dark)
    buf = io.BytesIO()
    Image.fromarray(np.clip(page + 0.5, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue(), {"scale": round(float(f), 3), "offset": (int(mx), int(my))}


def on_page(blob: bytes, meta: dict, rng, share=PAGE_SHARE, size=PAGE) -> tuple[bytes, dict]:
    """A clean scan (scan()'s PNG and meta) pasted on a white page of `size` (W, H), a phone's 12 MP photo of a
    whole sheet, scaled so that a digit is `share` (a range) of the page's shorter side: a number written
    small on a page -> JPEG bytes (quality 92, as a phone saves) and the meta with "boxes" on the page and
    "share"."""
    img = Image.open(io.BytesIO(blob)).convert("L")
    f = rng.uniform(*share) * min(size) / (20 * meta["scale"])  # page px per scan px (a digit: 20 x scale px)
    f = min(f, 0.9 * size[0] / img.width, 0.9 * size[1] / img.height)
    img = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.BICUBIC)
    x, y = (int(rng.uniform(0, size[i] - (img.width, img.height)[i])) for i in range(2))
    page = Image.new("L", size, int(np.asarray(img)[0, 0]))  # the scan's own paper
    page.paste(img, (x, y))
    buf = io.BytesIO()
    page.save(buf, "JPEG", quality=92)
    boxes = [(x + round(x0 * f), y + round(y0 * f), x + round(x1 * f), y + round(y1 * f)) for x0, y0, x1, y1 in meta["boxes"]]
    return buf.getvalue(), {"boxes": boxes, "share": round(float(f * 20 * meta["scale"] / min(size)), 4)}


def number_set(n: int = 300, seed: int = 0, kind: str = "clean", digits=(4, 6), two_lines: float = TWO_LINES,
               turned: float = TURNED, data_dir=None) -> list[tuple[bytes, dict]]:
    """n numbers of digits[0]-digits[1] digits a line, random with `seed`, as clean scans (PNG, kind="clean")
    or photos (JPEG, kind="photo"), or the clean scans small on a 12 MP page (JPEG, kind="page": on_page())
    -> list of (image bytes, meta): compose()'s meta with "kind", and a photo's render() attributes
    (FAMILIES' keys, "digit_box": the number's box, ...) or a scan's "scale", "offset" and "boxes" (each
    digit's, in the image's px). The numbers come from one rng, their rendering from another: every kind of
    a seed holds the same numbers."""
    if kind not in ("clean", "photo", "page"):
        raise ValueError(f"kind {kind!r}: 'clean', 'photo' or 'page'")
    rng, look = np.random.default_rng(seed), np.random.default_rng([seed, 1 + (kind == "photo")])
    paper = np.random.default_rng([seed, 3])  # a page's own draws: its clean scans are the clean kind's
    out = []
    for _ in range(n):
        bitmap, meta = compose(rng, digits, two_lines, turned, data_dir)
        layers = meta.pop("layers")
        if kind in ("clean", "page"):
            blob, extra = scan(bitmap, look)
            f, (mx, my) = extra["scale"], extra["offset"]
            meta["boxes"] = [(mx + round(x0 * f), my + round(y0 * f), mx + round(x1 * f), my + round(y1 * f))
                             for x0, y0, x1, y1 in meta["boxes"]]
            if kind == "page":
                blob, more = on_page(blob, {**meta, **extra}, paper)
                extra = {**extra, **more}
                meta["boxes"] = extra.pop("boxes")
        else:  # the unturned bitmap, the photo turned: the paper's rules run along the number
            back = -1 if meta["turned"] > 0 else 1
            flat = np.rot90(bitmap, back) if meta["turned"] else bitmap
            flat_layers = np.rot90(layers, back, axes=(1, 2)) if meta["turned"] else layers
            framing = FRAMINGS[0][int(np.searchsorted(np.cumsum(FRAMINGS[1]), look.random()))]
            blob, extra = render(np.ascontiguousarray(flat), look, {"framing": framing, "turn": meta["turned"]},
                                 layers=np.ascontiguousarray(flat_layers))
            del meta["boxes"]  # in the bitmap; the photo has the whole number's "digit_box"
        out.append((blob, {**meta, **extra, "kind": kind}))
    return out


def edits(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def groups(meta: dict) -> list[str]:
    """The table rows a number counts in."""
    names = ["all", f"lines: {meta['lines']}", "turned 90 deg" if meta["turned"] else "upright",
             "a touching pair" if meta["touching"] else "no touching pair"]
    if meta["kind"] == "photo":
        names += [f"{k}: {meta[k]}" for k in FAMILIES if k in meta]
    return names


def table(items, readings) -> list[tuple[str, int, int, int, int]]:
    """Rows (group, numbers, numbers right, digits, digits right) over (bytes, meta) items and their readings."""
    rows: dict[str, list[int]] = {}
    for (_, meta), got in zip(items, readings):
        truth = meta["number"]
        digits = len(truth.replace(" ", ""))
        wrong = min(digits, edits(truth.replace(" ", ""), (got or "").replace(" ", "")))
        for name in groups(meta):
            r = rows.setdefault(name, [0, 0, 0, 0])
            r[0], r[1], r[2], r[3] = r[0] + 1, r[1] + (got == truth), r[2] + digits, r[3] + digits - wrong
    order = ["all", "lines: 1", "lines: 2", "upright", "turned 90 deg", "no touching pair", "a touching pair"]
    order += [f"{k}: {v}" for k, vs in FAMILIES.items() for v in vs]
    return [(name, *rows[name]) for name in order if name in rows]


def write(items, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (blob, meta) in enumerate(items):
        ext = "png" if meta["kind"] == "clean" else "jpg"  # a photo, a page: JPEG
        paths.append(folder / f"{meta['kind']}-{i:04d}-{meta['number'].replace(' ', '_')}.{ext}")
        paths[-1].write_bytes(blob)
    return paths


def read_all(model, paths, threads: int = 1, params: dict | None = None, lines=True) -> list[str]:
    """Each image -> the number DigitClassifier(model, lines=lines).read(path) finds ("" for "no digit found");
    params: numbers of the reader to use instead of the model's own (PREPROCESSING's keys)."""
    from export.predict import DigitClassifier, ImageError

    clf = DigitClassifier(model, threads=threads, lines=lines)
    if not hasattr(clf, "read"):
        raise SystemExit("error: this DigitClassifier has no read() (issue 22's number reader): update export/reader")
    clf.params.update(params or {})
    out = []
    for p in paths:
        try:
            out.append(str(clf.read(str(p))["number"]))
        except ImageError as e:
            if "no digit found" not in str(e):
                raise
            out.append("")
    return out


def gallery(items, out: Path, readings=None, cols: int = 4, cell: int = 300) -> None:
    """A contact sheet PNG: each image fitted into a cell x cell square, its truth (and reading) below."""
    rows = (len(items) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, rows * (cell + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (blob, meta) in enumerate(items):
        img = Image.open(io.BytesIO(blob)).convert("RGB")
        img.thumbnail((cell - 4, cell - 4))
        x, y = (i % cols) * cell, (i // cols) * (cell + 16)
        sheet.paste(img, (x + (cell - img.width) // 2, y + (cell - img.height) // 2))
        label = meta["number"] + ("" if readings is None else f"  read {readings[i] or '-'}")
        bad = readings is not None and readings[i] != meta["number"]
        draw.text((x + 4, y + cell), label, fill="red" if bad else "black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)


def report(kind: str, items, readings, markdown: bool) -> None:
    print(f"\n{kind}: {len(items)} numbers")
    head = ("group", "n", "numbers right", "digits right")
    rows = [(g, str(n), f"{ok} ({100 * ok / n:.1f}%)", f"{100 * dok / max(d, 1):.2f}%") for g, n, ok, d, dok in
            table(items, readings)]
    if markdown:
        print("| " + " | ".join(head) + " |\n| --- | ---: | ---: | ---: |")
        print("\n".join("| " + " | ".join(r) + " |" for r in rows))
    else:
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
        for r in [head] + rows:
            print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    misses = [(i, m, got) for i, ((_, m), got) in enumerate(zip(items, readings)) if got != m["number"]]
    print(f"misses ({len(misses)}):" if misses else "misses: none")
    for i, m, got in misses:
        fam = ("" if kind == "clean" else f"; a digit {100 * m['share']:.1f}% of the page" if kind == "page"
               else f"; {m['paper']}, {m['pen']}, {m['ink']}, {m['framing']}")
        print(f"  #{i}: truth {m['number']}  read {got or '(nothing)'}  [{m['lines']} line(s), turned "
              f"{m['turned']}, {m['touching']} touching{fam}]")


def overrides(items: list[str]) -> dict:
    """["KEY=VALUE", ...] -> {KEY: VALUE}: each KEY a number of the reader (PREPROCESSING), each VALUE JSON of
    the same shape as its default (a number, or a list of numbers). ValueError naming the bad item."""
    from export.reader.params import PREPROCESSING

    numeric = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in PREPROCESSING:
            raise ValueError(f"--set {item}: KEY=VALUE with KEY one of the reader's numbers (export/reader/params.py)")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        default = PREPROCESSING[key]
        if not (numeric(value) if numeric(default) else isinstance(value, list) and all(map(numeric, value))):
            raise ValueError(f"--set {item}: {key} takes {'a number' if numeric(default) else 'a JSON list of numbers'}, "
                             f"like its default {json.dumps(default)}")
        out[key] = value
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="an exported .onnx: read every number and print the tables and misses")
    ap.add_argument("--n", type=int, default=300, help="numbers of each kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--digits", type=int, nargs=2, default=(4, 6), metavar=("MIN", "MAX"), help="digits a line")
    ap.add_argument("--kind", choices=["clean", "photo", "page", "both"], default="both",
                    help="both: clean and photo; page: the clean scans small on a 12 MP page")
    ap.add_argument("--markdown", action="store_true", help="tables in Markdown")
    ap.add_argument("--write", type=Path, metavar="DIR", help="save the images here (default: a temporary folder)")
    ap.add_argument("--gallery", type=Path, metavar="FILE.png", help="a contact sheet of the first 16 of each kind")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="read with this number of the reader instead of the model's (export/reader/params.py); repeatable")
    ap.add_argument("--lines", metavar="FILE", default=None,
                    help="the line model (default: the .lines.onnx beside --model, where there is one; none: digit by digit)")
    args = ap.parse_args(argv)
    lines = True if args.lines is None else False if args.lines.lower() == "none" else args.lines
    try:
        params = overrides(args.set)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.digits[0] < 1 or args.digits[1] < args.digits[0]:
        print(f"error: --digits {args.digits[0]} {args.digits[1]}: need 1 <= MIN <= MAX", file=sys.stderr)
        return 2
    if args.model and not Path(args.model).is_file():
        print(f"error: model {args.model} not found: export one (python -m export) or pass its path", file=sys.stderr)
        return 2
    from export.predict import DigitClassifier, ModelError

    kinds = ["clean", "photo"] if args.kind == "both" else [args.kind]
    sets = {}
    for kind in kinds:
        t0 = time.perf_counter()
        sets[kind] = number_set(args.n, args.seed, kind, tuple(args.digits))
        dt = time.perf_counter() - t0
        print(f"{args.n} {kind} numbers generated in {dt:.1f} s (seed {args.seed})", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        readings = {}
        for kind, items in sets.items():
            paths = write(items, (args.write or Path(tmp)) / kind)
            if args.model:
                t0 = time.perf_counter()
                try:
                    readings[kind] = read_all(args.model, paths, params=params, lines=lines)
                except ModelError as e:
                    print(f"error: {e}", file=sys.stderr)
                    return 2
                dt = time.perf_counter() - t0
                used = DigitClassifier(args.model, lines=lines).line_model is not None
                print(f"{kind}: read in {dt:.1f} s ({dt / len(paths) * 1000:.0f} ms a number, 1 thread, "
                      f"{'lines read whole by the line model' if used else 'digit by digit'})"
                      + "".join(f", {k}={v}" for k, v in params.items()), file=sys.stderr)
                report(kind, items, readings[kind], args.markdown)
    if args.gallery:
        shown = [(it, r) for kind in kinds for it, r in zip(sets[kind][:16], readings.get(kind, [None] * 16))]
        gallery([it for it, _ in shown], args.gallery, [r for _, r in shown] if readings else None)
        print(f"wrote {args.gallery}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
