"""Any file, PIL image or array -> the grey working image (H, W) float32 in [0, 1], as it looks (step 1)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .params import MAX_PIXELS, PREPROCESSING


class ImageError(ValueError):
    """One input cannot be classified; str() is the reason, one line."""


def load_image(path: str | os.PathLike, grey: bool = False) -> Image.Image:
    """Open and fully decode a file, turning every way it can fail into an ImageError.

    With `grey`, a JPEG is decoded as grey (its Y channel only, PIL's draft mode at full scale: no colour
    conversion). Not at 1/2-1/8 scale: the DCT's block means would fade thin pen strokes."""
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
                if grey and img.format == "JPEG":
                    img.draft("L", img.size)
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


def _grey(image, luma=PREPROCESSING["luma"]) -> np.ndarray:
    """A path, PIL image or array -> (H, W) at full size, the image as it looks (not yet inverted): uint8
    (0..255, from the common 8-bit files, left as bytes so a 12 MP photo is reduced before any float
    math) or float32 in [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image, grey=True)
    if isinstance(image, Image.Image):
        img = ImageOps.exif_transpose(image)  # phones store portrait shots sideways plus a rotation tag
        if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
            a = np.asarray(img.convert("RGBA")).astype(np.float32) / 255.0
        elif img.mode.startswith("I;16"):
            return np.asarray(img.convert("I")).astype(np.float32) / 65535.0  # full scale 65535, however dark
        elif img.mode in ("I", "F"):
            return _scale(np.asarray(img))  # 32-bit: no fixed full scale, _scale infers one from the values
        else:  # 1, L, P, RGB, CMYK, YCbCr, ...
            return np.asarray(img.convert("L"))
    else:
        a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        x = _scale(a)
        alpha = x[..., -1] if a.shape[2] in (2, 4) else None
        rgb = x[..., :3] if a.shape[2] >= 3 else x[..., :1]
        y = rgb @ np.array(luma, np.float32) if rgb.shape[2] == 3 else rgb[..., 0]  # ITU-R 601 luma
        return _composite(y, alpha) if alpha is not None and alpha.min() < 1 else y
    if a.ndim != 2 or min(a.shape) == 0:
        raise ImageError(f"unsupported image shape {a.shape}: expected (H, W) gray or (H, W, 3|4) colour")
    return _scale(a)


def _factor(shape, work: int | None) -> int:
    """The whole reduction factor to the working size: floor(longer side / work), none below 2 x work."""
    return max(1, max(shape) // work) if work else 1


def _shrink(a: np.ndarray, f: int, op=np.minimum) -> np.ndarray:
    """(H, W) -> float32 (ceil(H/f), ceil(W/f)) in [0, 1]: per f x f block its darkest pixel (op=np.minimum)
    or its lightest (np.maximum); edge blocks take the pixels they have. A box mean would fade a pen stroke
    1-4 px wide in a 2000-4000 px photo to a faint smudge under a pixel wide; the darkest pixel keeps it
    at full darkness and at least one pixel wide (MNIST's stroke width is restored in step 7)."""
    if f > 1:
        r = a[0::f].copy()
        for i in range(1, f):  # rows, then columns: strided slices, f passes over 1/f of the image each
            s = a[i::f]
            op(r[:len(s)], s, out=r[:len(s)])
        a = r[:, 0::f].copy()
        for i in range(1, f):
            s = r[:, i::f]
            op(a[:, :s.shape[1]], s, out=a[:, :s.shape[1]])
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def to_gray(image, work: int | None = None, luma=PREPROCESSING["luma"], darkest: bool = True) -> np.ndarray:
    """A path, PIL image or array -> float32 (H, W) in [0, 1], the image as it looks (not yet inverted).

    With `work`, reduced by the whole factor floor(longer side / work) (none below 2 x work), so the
    longer side ends between work and 2 x work - 1 pixels: the working image of the preprocessing. Each
    f x f block keeps its darkest pixel (darkest=True, for dark ink) or its lightest (for light ink)."""
    a = _grey(image, luma)
    return _shrink(a, _factor(a.shape, work), np.minimum if darkest else np.maximum)
