"""python -m export.reader --model mnist.onnx photo.jpg: the command line (cli.py)."""

from .cli import run

run()
