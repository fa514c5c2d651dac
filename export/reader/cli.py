"""The command line: classify image files and folders, one line (or one JSON list) out, one line per failure.

Output: one line per classified image, `path<TAB>digit<TAB>confidence` on stdout; with --json one JSON
list instead, in input order, of {"path": str, "digit": int, "confidence": float, "probs": [10 floats]}
for the classified images only. Each input that fails (missing, not an image, truncated, too large,
blank) gets one line on stderr, `path: reason`, and the others are still classified. Exit status:
0 all classified, 1 some inputs failed, 2 usage or model error. `--explain DIR` writes, per input, a
picture of what the steps found and the 28x28 the model saw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .classifier import DigitClassifier, ModelError
from .explain import explain_panel
from .image import ImageError
from .params import BATCH


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
    parser = argparse.ArgumentParser(description="Classify handwritten digits in image files with an ONNX model.")
    parser.add_argument("--model", required=True, help="the exported .onnx file")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of tab-separated lines")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for inference (default: all)")
    parser.add_argument("--explain", metavar="DIR", type=Path, default=None,
                        help="also write DIR/<file name>.png per input: the working image with the digit's box, "
                             "the 28x28 the model saw, and the decision")
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        clf = DigitClassifier(args.model, threads=args.threads)
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
    for start in range(0, len(paths), BATCH):  # a chunk at a time: a directory of 100k files stays small in memory
        good, arrays = [], []
        for path in paths[start:start + BATCH]:
            try:
                if path.is_dir():
                    raise ImageError("directory holds no files")
                arrays.append(clf.preprocess(path))
                good.append(path)
            except Exception as e:  # one bad file must not stop the rest
                failed += 1
                reason = str(e) if isinstance(e, ImageError) else f"cannot classify ({type(e).__name__}: {e})"
                print(f"{path}: {reason}", file=sys.stderr)
        try:
            preds = clf.predict_arrays(np.stack(arrays)) if arrays else []
        except Exception as e:  # a model that loads but cannot run on its own declared input
            print(f"error: model {args.model} failed to run ({str(e).strip().splitlines()[0][:200]})", file=sys.stderr)
            return 2
        for path in paths[start:start + BATCH] if args.explain else []:
            name = f"{path.name}.png"
            while name in names:  # the same file name from two folders
                name = f"{path.stem}-{len(names)}{path.suffix}.png"
            names.add(name)
            explain_panel(clf, path, path.name).save(args.explain / name)
        for path, p in zip(good, preds):
            if args.json:
                results.append({"path": str(path), "digit": p.digit, "confidence": p.confidence,
                                "probs": [float(v) for v in p.probs]})
            else:
                print(f"{path}\t{p.digit}\t{p.confidence:.4f}")
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
