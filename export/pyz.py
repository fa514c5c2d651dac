"""Bundle the torch-free reader (export/reader/) into one file for the device: predict.pyz.

    python -m export.pyz artifacts/predict.pyz       # `python -m export` writes it beside the model

A zipapp (the standard library's zipapp module): export/reader/ as a top-level `reader` package plus a
__main__.py that runs its command line. On the device, with numpy, onnxruntime and pillow only:

    python predict.pyz --model mnist.onnx photo.jpg
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipapp
from pathlib import Path

READER = Path(__file__).resolve().parent / "reader"
NAME = "predict.pyz"  # the file name `python -m export` gives it, beside the .onnx
MAIN = '''"""predict.pyz: classify handwritten digits with an exported ONNX model (python predict.pyz --help)."""

from reader.cli import run

run()
'''


def build(target: str | os.PathLike) -> Path:
    """Write the zipapp at `target`, whole or not at all (written under a temporary name, then renamed)."""
    target = Path(target)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tempfile.TemporaryDirectory() as folder:
            shutil.copytree(READER, Path(folder) / "reader", ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
            (Path(folder) / "__main__.py").write_text(MAIN)
            zipapp.create_archive(folder, partial, interpreter="/usr/bin/env python3", compressed=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="python -m export.pyz", description="Bundle export/reader/ into one file for the device.")
    ap.add_argument("out", metavar="OUT.pyz", help=f"the file to write (e.g. artifacts/{NAME})")
    print(build(ap.parse_args().out))  # --help prints this usage: it is not a file name
