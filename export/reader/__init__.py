"""The torch-free digit reader: any image of a handwritten digit in, the exported ONNX model's answer out.

Needs numpy, onnxruntime and pillow only. Every import inside is relative, so the same package runs as
`export.reader` in the repository and as a top-level `reader` inside predict.pyz on the device.

    from export.reader import DigitClassifier     # or: from export.predict import ..., or in predict.pyz
    clf = DigitClassifier("mnist.onnx")
    clf.predict(["photo.jpg", pil_image, numpy_array])   # -> [Prediction(digit=7, label='7', ...), ...]
    clf.read("meter.jpg")   # the whole number: {"number": "745382", "digits": [{"digit", "confidence", "probs",
                            # "box": [x0, y0, x1, y1]}, ...], "digit": the most prominent one, as predict() reads it}

One job per module, in the order of the steps (web/ holds a JavaScript twin of each, of the same name):
params (every number), image (file -> grey working image), filters (numpy building blocks), paper
(polarity, paper level, desk), rules (ruled and grid lines), marks (connected marks, the digit), mnist
(MNIST's own steps), preprocess (the steps in order), segment (a whole number's digits, in reading
order), classifier (the model), explain (--explain pictures), cli (the command line).
"""

from .classifier import DigitClassifier, ModelError, Prediction
from .explain import TILE, explain_panel
from .image import ImageError, load_image, to_gray
from .params import DEFAULTS, PREPROCESSING
from .preprocess import preprocess

__all__ = ["DEFAULTS", "PREPROCESSING", "TILE", "DigitClassifier", "ImageError", "ModelError", "Prediction",
           "explain_panel", "load_image", "preprocess", "to_gray"]
