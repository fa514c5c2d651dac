"""Read handwritten numbers and digits in image files with the exported ONNX model, without torch.

The code lives in export/reader/ (one module per job); this file is its entry point in the repository:

    $ python -m export.predict --model artifacts/mnist.onnx photo.jpg meter.jpg scans/
    photo.jpg	7	0.9981
    meter.jpg	745382	0.9007                       <- a number: its least sure digit's confidence
    scans/a.png	3	0.9712
    scans/b.png: no digit found (blank image)          <- on stderr; exit status 1

On the device, `python -m export` has bundled the same code into one file, artifacts/predict.pyz, which
needs only numpy, onnxruntime and pillow (pip install onnxruntime numpy pillow):

    $ python predict.pyz --model mnist.onnx photo.jpg
    $ python predict.pyz --model mnist.onnx --json --explain why/ photo.jpg

Output, exit statuses and --explain: see export/reader/cli.py. In Python:

    from export.predict import DigitClassifier        # the same names as export.reader
    clf = DigitClassifier("mnist.onnx")
    clf.predict(["photo.jpg", pil_image, numpy_array])   # -> [Prediction(digit=7, label='7', ...), ...]
    clf.read("meter.jpg")["number"]                      # -> "745382" (and its digits, boxes: see read())
"""

from export.reader import (DEFAULTS, PREPROCESSING, TILE, DigitClassifier, ImageError, ModelError, Prediction,
                           explain_panel, load_image, preprocess, to_gray)
from export.reader.cli import expand, main, run
from export.reader.params import BATCH, MAX_PIXELS

__all__ = ["BATCH", "DEFAULTS", "MAX_PIXELS", "PREPROCESSING", "TILE", "DigitClassifier", "ImageError",
           "ModelError", "Prediction", "expand", "explain_panel", "load_image", "main", "preprocess", "to_gray"]

if __name__ == "__main__":
    run()
