"""The command line: read the handwritten number (or digit) in image files and folders, one line (or one
JSON list) out, one line per failure.

Output: one line per read image, `path<TAB>number<TAB>confidence` on stdout: the number's digits along
each line, left to right, lines top to bottom and joined by one space (a single digit: that digit), and
the confidence of its least sure digit. With --json one JSON list instead, in input order, for the read
images only, of {"path": str, "number": str, "digits": [{"digit": int, "confidence": float, "probs": [10
floats], "box": [x0, y0, x1, y1] in the image's pixels}, ... in reading order], "digit": int,
"confidence": float, "probs": [10 floats]}: "digit" and its confidence and probabilities are the single
most prominent digit, as before numbers were read. Each input that fails (missing, not an image,
truncated, too large, blank) gets one line on stderr, `path: reason`, and the others are still read.
Exit status: 0 all read, 1 some inputs failed, 2 usage or model error. `--explain DIR` writes, per input,
a picture of what the steps found: every digit's box with its reading, and the 28x28 the model saw of each.

The line model beside the model (mnist.lines.onnx beside mnist.onnx: `python -m export --lines`) reads each
line of a number whole, where it is; `--lines FILE` names another, `--lines none` reads digit by digit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .classifier import DigitClassifier, ModelError
from .explain import explain_panel
from .image import ImageError


def expand(args: list[str]) -> list[Path]:
    """Directories -> their visible files, sorted (not recursive); other paths as given."""
    paths = []
    for arg in map(Path, args):
        if arg.is_dir():
            files = sorted(p for p in arg.iterdir() if p.is_file() and not p.name.startswith("."))
            paths += files or [arg]  # an empty directory is reported as a failed input
        else:
            paths.append(arg)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Read handwritten numbers and digits in image files with an ONNX model.")
    parser.add_argument("--model", required=True, help="the exported .onnx file")
    parser.add_argument("--lines", metavar="FILE", default=None,
                        help="the line model that reads each line of a number whole (default: the .lines.onnx beside "
                             "--model, where there is one; none: each digit read alone)")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of tab-separated lines")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for inference (default: all)")
    parser.add_argument("--explain", metavar="DIR", type=Path, default=None,
                        help="also write DIR/<file name>.png per input: the working image with each digit's box and "
                             "reading, the 28x28 the model saw of each, and the decision")
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        lines = True if args.lines is None else False if args.lines.lower() == "none" else args.lines
        clf = DigitClassifier(args.model, threads=args.threads, lines=lines)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths, failed, results = expand(args.inputs), 0, []
    if args.explain:
        try:
            args.explain.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            print(f"error: cannot create --explain folder {args.explain} ({e.strerror or e})", file=sys.stderr)
            return 2
    names = set()
    for path in paths:  # one at a time: a directory of 100k files stays small in memory
        try:
            if path.is_dir():
                raise ImageError("directory holds no files")
            r = clf.read(path)
        except ModelError as e:  # a model that loads but cannot run on its own declared input
            print(f"error: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # one bad file must not stop the rest
            failed += 1
            reason = str(e) if isinstance(e, ImageError) else f"cannot classify ({type(e).__name__}: {e})"
            print(f"{path}: {reason}", file=sys.stderr)
            r = None
        if args.explain:
            name = f"{path.name}.png"
            while name in names:  # the same file name from two folders
                name = f"{path.stem}-{len(names)}{path.suffix}.png"
            names.add(name)
            explain_panel(clf, path, path.name).save(args.explain / name)
        if r is None:
            continue
        if args.json:
            results.append({"path": str(path), **r})
        else:  # the number is as sure as its least sure digit
            print(f"{path}\t{r['number']}\t{min(d['confidence'] for d in r['digits']):.4f}")
    if args.json:
        print(json.dumps(results))
    return 1 if failed else 0


def run(argv: list[str] | None = None) -> None:
    """main() as a program: exits with its status."""
    try:
        sys.exit(main(argv))
    except BrokenPipeError:  # `... | head`: the reader left, nothing more to say
        sys.stderr.close()
        sys.exit(1)
