// Image files for the page: a File -> its pixels (ImageData, EXIF rotation applied), refusing what
// predict.py refuses (empty, too many bytes or pixels, not an image), and a small copy to draw boxes on.

import { ImageError } from "./image.js";
import { MAX_PIXELS } from "./params.js";

const MAX_BYTES = 50 * 2 ** 20; // files over 50 MiB are refused before decoding
const THUMB = 480; // px: the longer side of the copy a number's boxes are drawn on

// PNG stores its size in the header: refuse a decompression bomb before decoding it.
async function pngSize(file) {
  const head = new Uint8Array(await file.slice(0, 24).arrayBuffer());
  const png = [0x89, 0x50, 0x4e, 0x47].every((b, i) => head[i] === b);
  if (!png || head.length < 24) return null;
  const v = new DataView(head.buffer);
  return [v.getUint32(16), v.getUint32(20)];
}

// A File -> ImageData (RGBA, EXIF rotation applied), or an ImageError with the reason.
export async function decode(file) {
  if (file.size === 0) throw new ImageError("empty file");
  if (file.size > MAX_BYTES) throw new ImageError(`too large (${(file.size / 2 ** 20).toFixed(0)} MiB, limit ${MAX_BYTES / 2 ** 20} MiB)`);
  const size = await pngSize(file);
  const tooLarge = (w, h) => new ImageError(`too large (${w}x${h} pixels, limit ${MAX_PIXELS / 1e6} megapixels)`);
  if (size && size[0] * size[1] > MAX_PIXELS) throw tooLarge(...size);
  let bitmap;
  try {
    // colorSpaceConversion "none": the file's own pixel values, as Pillow reads them.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image", premultiplyAlpha: "none", colorSpaceConversion: "none" });
  } catch {
    throw new ImageError("not an image (unknown or unsupported format, or corrupt)");
  }
  const { width: w, height: h } = bitmap;
  if (w * h > MAX_PIXELS) { bitmap.close(); throw tooLarge(w, h); }
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, w, h);
}

// ImageData -> a canvas of it at most THUMB px on its longer side (the boxes are drawn over it).
export function thumbnail(image) {
  const s = Math.min(1, THUMB / Math.max(image.width, image.height));
  const src = new OffscreenCanvas(image.width, image.height);
  src.getContext("2d").putImageData(image, 0, 0);
  const c = document.createElement("canvas");
  c.width = Math.max(1, Math.round(image.width * s));
  c.height = Math.max(1, Math.round(image.height * s));
  c.getContext("2d").drawImage(src, 0, 0, c.width, c.height);
  return c;
}
