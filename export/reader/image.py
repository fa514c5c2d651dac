"""Any file, PIL image or array -> the grey working image (H, W) float32 in [0, 1], as it looks."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .params import MAX_PIXELS, PREPROCESSING


class ImageError(ValueError):
    """One input cannot be classified; str() is the reason, one line."""


def load_image(path: str | os.PathLike, work: int | None = None) -> Image.Image:
    """Open and fully decode a file, turning every way it can fail into an ImageError.

    With `work`, a JPEG is decoded as grey (its Y channel) at 1/2, 1/4 or 1/8 scale in the DCT domain
    (PIL's draft mode), as small as keeps its longer side >= work: a 12 MP photo decodes 10x faster."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file")
        with warnings.catch_warnings():
            # PIL only warns between its own limit and twice that; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(f"too large ({img.width}x{img.height} pixels, limit {MAX_PIXELS // 10**6} megapixels)")
                if work and img.format == "JPEG":
                    img.draft("L", (-(-img.width * work // max(img.size)), -(-img.height * work // max(img.size))))
                img.load()  # decodes: a truncated or corrupt file raises here, not later
                return img
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"too large (over {MAX_PIXELS // 10**6} megapixels)") from None
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except PermissionError:
        raise ImageError("cannot read (permission denied)") from None
    except UnidentifiedImageError:
        raise ImageError("not an image (unknown or unsupported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # what PIL's decoders raise on bad data
        raise ImageError(f"truncated or corrupt image ({str(e).strip() or type(e).__name__})") from None


def _scale(a: np.ndarray) -> np.ndarray:
    """Any numeric array -> float32 in [0, 1], by the range its dtype implies."""
    if a.dtype == bool:
        return a.astype(np.float32)
    if a.dtype.kind == "u" and a.dtype.itemsize <= 2:  # uint8 / 255, uint16 (either byte order) / 65535
        return a.astype(np.float32) / np.iinfo(a.dtype).max
    a = a.astype(np.float32)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    if lo >= 0 and hi <= 1 and a.dtype.kind == "f":
        return a
    for top in (255.0, 65535.0):  # mode "I" holds 16-bit PNGs; float arrays often hold 0..255
        if lo >= 0 and hi <= top:
            return a / top
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _composite(y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten gray `y` with transparency onto a ground the ink shows up on; both (H, W) in [0, 1]."""
    opaque = y[alpha > 0.5]
    if opaque.size == 0:
        return np.ones_like(y)  # nothing visible: blank
    lo, hi = np.percentile(opaque, [5, 95])
    if hi - lo > 0.25:  # the visible part is a digit on its own paper: extend that paper
        ground = float(np.median(opaque))
    else:  # the visible part is the ink itself (e.g. a black digit on a transparent PNG): contrast it
        ground = 1.0 if opaque.mean() < 0.5 else 0.0
    return alpha * y + (1 - alpha) * ground


def _reduce(a: np.ndarray, f: int) -> np.ndarray:
    """Box mean over f x f blocks, (H, W) -> (ceil(H/f), ceil(W/f)); edge blocks average the pixels they have
    (what PIL's Image.reduce does)."""
    if f <= 1:
        return a
    h, w = a.shape
    H, W = -(-h // f) * f, -(-w // f) * f
    sums = np.pad(a, ((0, H - h), (0, W - w))).reshape(H // f, f, W // f, f).sum(axis=(1, 3))
    counts = np.pad(np.ones_like(a), ((0, H - h), (0, W - w))).reshape(H // f, f, W // f, f).sum(axis=(1, 3))
    return (sums / counts).astype(np.float32)


def to_gray(image, work: int | None = None, luma=PREPROCESSING["luma"]) -> np.ndarray:
    """A path, PIL image or array -> float32 (H, W) in [0, 1], the image as it looks (not yet inverted).

    With `work`, box-reduced by the whole factor floor(longer side / work) (none below 2 x work), so the
    longer side ends between work and 2 x work - 1 pixels: the working image of the preprocessing."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image, work)
    f = 1
    if isinstance(image, Image.Image):
        img = ImageOps.exif_transpose(image)  # phones store portrait shots sideways plus a rotation tag
        if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
            img, full = img.convert("RGBA"), 255.0
        elif img.mode.startswith("I;16"):
            img, full = img.convert("I"), 65535.0  # 16-bit: full scale is 65535, however dark the content
        elif img.mode in ("I", "F"):
            full = None  # 32-bit: no fixed full scale, _scale infers one from the values
        else:  # 1, L, P, RGB, CMYK, YCbCr, ...
            img, full = img.convert("L"), 255.0
        if work and max(img.size) >= 2 * work:  # box-average big photos first: a 20 px digit needs no 12 MP
            img = img.reduce(max(img.size) // work)
        a = np.asarray(img).astype(np.float32) / full if full else np.asarray(img)  # (H, W) or (H, W, 4)
    else:
        a = np.asarray(image)
        f = max(1, max(a.shape[:2]) // work) if work and a.ndim >= 2 else 1
    if a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        x = _scale(a)
        alpha = x[..., -1] if a.shape[2] in (2, 4) else None
        rgb = x[..., :3] if a.shape[2] >= 3 else x[..., :1]
        y = rgb @ np.array(luma, np.float32) if rgb.shape[2] == 3 else rgb[..., 0]  # ITU-R 601 luma
        return _reduce(_composite(y, alpha) if alpha is not None and alpha.min() < 1 else y, f)
    if a.ndim != 2 or min(a.shape) == 0:
        raise ImageError(f"unsupported image shape {a.shape}: expected (H, W) gray or (H, W, 3|4) colour")
    return _reduce(_scale(a), f)
