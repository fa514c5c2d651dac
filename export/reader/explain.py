"""--explain: one picture per input of what the preprocessing found and the 28x28 the model saw."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .image import ImageError
from .preprocess import _steps

if TYPE_CHECKING:
    from .classifier import DigitClassifier

TILE = 168  # px: each picture of an --explain panel (the 28x28 input enlarged 6x)


def explain_panel(clf: "DigitClassifier", image, note: str = "") -> Image.Image:
    """One --explain picture: the working image with the digit's box (red), the 28x28 the model saw
    (enlarged, nearest neighbour), and the decision below them. Never raises for a bad image: says why."""
    from PIL import ImageDraw

    panel = Image.new("RGB", (2 * TILE + 12, TILE + 26), "white")
    draw = ImageDraw.Draw(panel)
    try:
        x, info = _steps(image, {**clf.params, "fit": clf.fit, "canvas": clf.canvas})
        p = clf.predict_arrays(x[None])[0]
        text = f"-> {p.label}  ({p.confidence:.2f})"
    except ImageError as e:
        x, info, text = None, getattr(e, "info", None), str(e)
    if info is not None:  # the working image (dark ink on light, as the steps saw it), fitted into a tile
        g = info["gray"]
        f = TILE / max(g.shape)
        view = Image.fromarray((g * 255 + 0.5).astype(np.uint8)).convert("RGB")
        view = view.resize((max(1, round(g.shape[1] * f)), max(1, round(g.shape[0] * f))), Image.BILINEAR)
        panel.paste(view, (0, 0))
        if info["box"]:
            y0, x0, y1, x1 = (round(v * f) for v in info["box"])
            draw.rectangle([x0, y0, x1, y1], outline=(220, 0, 0), width=2)
    if x is not None:
        panel.paste(Image.fromarray((x * 255 + 0.5).astype(np.uint8)).resize((TILE, TILE), Image.NEAREST), (TILE + 12, 0))
    draw.text((4, TILE + 6), f"{text}   {note}".strip(), fill=(0, 0, 0))
    return panel
