"""Not-digits: what the number reader's segmentation can hand the classifier that is no single digit.

The reader (export/reader/segment.py) decides whether a wide mark is two touching digits by asking the
classifier about the whole and about each half of a cut, and keeps the reading it is surer of. A network
trained on single digits only is sure of almost anything: two touching digits squeezed into one 28x28
read as one digit at 0.96, half of a 0 as a 1. So training shows it such inputs too, labelled NOT_DIGIT
and trained towards equal probabilities for all ten classes ("outlier exposure", Hendrycks et al. 2019):
its confidence then says whether a piece is one digit, and the segmentation's evidence means something.

Each is made from two training digits a and b of the batch, whole digits written side by side as a hand
writes them (b's ink starting 0-3 px before a's ends: touching), of which a window of columns is kept:
  - a pair:         all of a and all of b (two touching digits taken for one);
  - a piece:        a's columns left or right of a cut at 25-75% of its ink's width (a digit cut in two);
  - a digit and more: all of a and the first 20-60% of b's width (a cut that went too far).
The window is then fitted as the reader fits a digit: its ink's longer side scaled to 20 px, its centre of
mass at the centre of the 28x28, strokes thickened back by a pixel where the scaling thinned them. All of
it runs on the whole batch on the training device, like src.data.random_affine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NOT_DIGIT = -1  # the label of a not-digit: its training target is 1/10 for every class


def _extent(ink: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) bool -> first and one-past-last index holding ink along dim (2: columns, 1: rows), (B,) each;
    (0, 0) where there is none."""
    any_ = ink.any(dim=3 - dim)  # (B, W) for columns, (B, H) for rows
    idx = torch.arange(any_.shape[1], device=ink.device)
    first = torch.where(any_, idx, any_.shape[1]).min(1).values
    last = torch.where(any_, idx + 1, 0).max(1).values
    return first.clamp(max=last), last


def not_digits(x: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n not-digits (n, 1, 28, 28) in [0, 1] from a batch of digits x (B, 1, 28, 28) in [0, 1], B >= 2:
    a third pairs, a third pieces, a third a digit and more (see the module's docstring)."""
    dev, b = x.device, len(x)
    rand = lambda *shape: torch.rand(*shape, device=dev, generator=generator)
    i = torch.randint(b, (n,), device=dev, generator=generator)
    j = (i + torch.randint(1, b, (n,), device=dev, generator=generator)) % b  # another digit than a
    a, bb = x[i, 0], x[j, 0]  # (n, 28, 28)
    la, ra = _extent(a > 0.2, 2)
    lb, rb = _extent(bb > 0.2, 2)
    # A strip 84 px wide: a in columns 28-55, b shifted so that its ink starts 0-3 px before a's ends.
    touch = (rand(n) * 4).long()  # px of overlap, 0-3
    shift = 28 + ra - touch - lb  # b's column 0 lands at this strip column
    cols = torch.arange(84, device=dev)
    src = cols[None] - shift[:, None]  # (n, 84): b's column at each strip column
    placed = torch.gather(bb, 2, src.clamp(0, 27)[:, None].expand(n, 28, 84)) * ((src >= 0) & (src < 28))[:, None]
    strip = torch.maximum(F.pad(a, (28, 28)), placed)  # (n, 28, 84)
    # The window of columns [lo, hi) kept, per kind.
    kind = torch.arange(n, device=dev) % 3
    cut = 28 + la + (0.25 + 0.5 * rand(n)) * (ra - la)  # inside a
    left = rand(n) < 0.5
    more = shift + lb + (0.2 + 0.4 * rand(n)) * (rb - lb)  # into b
    lo = torch.where((kind == 1) & ~left, cut, 28 + la.float())
    hi = torch.where(kind == 0, (shift + rb).float(), torch.where(kind == 1, torch.where(left, cut, 28 + ra.float()), more))
    window = lambda lo, hi: (cols[None] >= lo[:, None].floor()) & (cols[None] < hi[:, None].ceil())  # (n, 84)
    piece = strip * window(lo, hi)[:, None]
    # The reader tries only cuts leaving each side at least 0.6 of the digits' height (params.part_rel), and a
    # piece of a narrow digit (a 1: its ink under 0.6 x as wide as tall) is that digit still: make those pairs.
    ya0, ya1 = _extent(a > 0.2, 1)
    y0, y1 = _extent(piece > 0.2, 1)
    low = (y1 - y0 < 0.6 * (ya1 - ya0)) | ((kind == 1) & (ra - la < 0.6 * (ya1 - ya0)))
    strip = torch.where(low[:, None, None], strip * window(28 + la.float(), (shift + rb).float())[:, None], piece)
    # Fit as the reader does: the ink's box's longer side to 20 px, the centre of mass at the canvas's centre.
    ink = strip > 0.2
    y0, y1 = _extent(ink, 1)
    x0, x1 = _extent(ink, 2)
    side = torch.maximum(y1 - y0, x1 - x0).clamp(min=1).float()
    scale = 20 / side  # output px per strip px
    mass = strip.sum((1, 2)).clamp(min=1e-6)
    cy = (strip.sum(2) * torch.arange(28, device=dev)).sum(1) / mass
    cx = (strip.sum(1) * cols).sum(1) / mass
    # affine_grid maps output coordinates in [-1, 1] to input ones; input pixel k's centre is (2k + 1) / size - 1.
    zero = torch.zeros(n, device=dev)
    theta = torch.stack([torch.stack([28 / (84 * scale), zero, (2 * cx + 1) / 84 - 1], 1),
                         torch.stack([zero, 1 / scale, (2 * cy + 1) / 28 - 1], 1)], 1)  # (n, 2, 3)
    grid = F.affine_grid(theta, [n, 1, 28, 28], align_corners=False)
    out = F.grid_sample(strip[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # The reader thickens strokes to MNIST's width after fitting: scaled below 0.75, grow them by a pixel.
    thick = F.max_pool2d(F.pad(out, (0, 1, 0, 1)), 2, stride=1)
    return torch.where((scale < 0.75)[:, None, None, None], thick, out)
