"""--explain: one picture per input of what the preprocessing found: each digit's box with its reading on
the working image, the 28x28 the model saw (the single most prominent digit's, and each digit's of a
number), and the decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .image import ImageError

if TYPE_CHECKING:
    from .classifier import DigitClassifier

TILE = 168  # px: each picture of an --explain panel (the 28x28 input enlarged 6x)
SMALL = 56  # px: each digit's 28x28 of a number, enlarged 2x, in the panel's second row


def _tile(x: np.ndarray, size: int) -> Image.Image:
    """A (28, 28) input in [0, 1] -> a size x size grey picture of it (nearest neighbour: its pixels)."""
    return Image.fromarray((x * 255 + 0.5).astype(np.uint8)).resize((size, size), Image.NEAREST)


def explain_panel(clf: "DigitClassifier", image, note: str = "") -> Image.Image:
    """One --explain picture: the working image with every digit's box (red) and reading, the single
    most prominent digit's 28x28 (enlarged, nearest neighbour) beside it, below them each digit's 28x28
    with its reading when there are several, then the decision. Never raises for a bad image: says why."""
    from PIL import ImageDraw

    try:
        r = clf.read_inputs(image)
        info, x, digits = r["info"], r["input"], r["digits"]
        label = clf.labels[r["digit"]] if r["digit"] < len(clf.labels) else str(r["digit"])
        text = f"-> {r['number']}" + (f"  ({r['confidence']:.2f})" if len(digits) == 1 else f"  (most prominent: {label})")
    except ImageError as e:
        x, info, digits, text = None, getattr(e, "info", None), [], str(e)
    many = len(digits) > 1
    width = max(2 * TILE + 12, len(digits) * (SMALL + 4) if many else 0)
    panel = Image.new("RGB", (width, TILE + 26 + (SMALL + 16 if many else 0)), "white")
    draw = ImageDraw.Draw(panel)
    if info is not None:  # the working image (dark ink on light, as the steps saw it), fitted into a tile
        g = info["gray"]
        f = TILE / max(g.shape)
        view = Image.fromarray((g * 255 + 0.5).astype(np.uint8)).convert("RGB")
        view = view.resize((max(1, round(g.shape[1] * f)), max(1, round(g.shape[0] * f))), Image.BILINEAR)
        panel.paste(view, (0, 0))
        if digits:  # boxes in the input's pixels -> the tile's (the working image is the input / factor)
            s = f / info["factor"]
            for dg in digits:
                x0, y0, x1, y1 = (round(v * s) for v in dg["box"])
                draw.rectangle([x0, y0, x1, y1], outline=(220, 0, 0), width=2)
                draw.text((x0 + 2, y0 + 1), clf.labels[dg["digit"]] if dg["digit"] < len(clf.labels) else str(dg["digit"]),
                          fill=(220, 0, 0))
        elif info["box"]:
            y0, x0, y1, x1 = (round(v * f) for v in info["box"])
            draw.rectangle([x0, y0, x1, y1], outline=(220, 0, 0), width=2)
    if x is not None:
        panel.paste(_tile(x, TILE), (TILE + 12, 0))
    if many:  # each digit's 28x28, in reading order, its reading and confidence below it
        for i, dg in enumerate(digits):
            panel.paste(_tile(dg["input"], SMALL), (i * (SMALL + 4), TILE + 4))
            draw.text((i * (SMALL + 4) + 2, TILE + SMALL + 5), f"{dg['digit']} {dg['confidence']:.2f}", fill=(0, 0, 0))
    draw.text((4, panel.height - 20), f"{text}   {note}".strip(), fill=(0, 0, 0))
    return panel
