"""Numbers written by hand placement for the tests (tests/test_numbers.py, the page's in tests/test_web.py):
MNIST digits cropped to their ink and enlarged, set side by side on a baseline at a chosen gap (negative:
touching), lines one under the other on white paper.

    img = page([line([ink(images[i]) for i in (3, 2, 1)], gap=-12)])   # an RGB image of one line
"""

import numpy as np
from PIL import Image

SCALE = 4  # px of the page per MNIST px: digits ~80 px tall


def ink(a: np.ndarray) -> np.ndarray:
    """An MNIST digit (28, 28) uint8 -> its ink in [0, 1], cropped to it and enlarged SCALE times."""
    ys, xs = np.nonzero(a > 30)
    a = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    big = Image.fromarray(a).resize((a.shape[1] * SCALE, a.shape[0] * SCALE), Image.BICUBIC)
    return np.asarray(big, np.float32) / 255


def line(pieces, gap: int = 16) -> np.ndarray:
    """Inks side by side on a common baseline, `gap` px apart (negative: overlapping) -> one ink (H, W)."""
    h = max(p.shape[0] for p in pieces)
    out = np.zeros((h, sum(p.shape[1] for p in pieces) + gap * (len(pieces) - 1) + 1), np.float32)
    x = 0
    for p in pieces:
        win = out[h - p.shape[0]:, x:x + p.shape[1]]
        np.maximum(win, p, out=win)
        x += p.shape[1] + gap
    return out[:, :x - gap]


def page(lines, margin: int = 60, leading: int = 30) -> Image.Image:
    """Lines of ink one under the other on white paper (dark ink), margins around -> an RGB image."""
    w = max(a.shape[1] for a in lines) + 2 * margin
    h = sum(a.shape[0] for a in lines) + leading * (len(lines) - 1) + 2 * margin
    x, y = np.zeros((h, w), np.float32), margin
    for a in lines:
        x[y:y + a.shape[0], margin:margin + a.shape[1]] = a
        y += a.shape[0] + leading
    return Image.fromarray((250 - 230 * np.clip(x, 0, 1)).astype(np.uint8)).convert("RGB")
