"""Export the best checkpoint to one verified ONNX file (and optionally an INT8 copy).

    python -m export                                  # best.ckpt of the latest digits run under logs/
    python -m export --ckpt logs/mnist/version_3/checkpoints/best.ckpt --out artifacts/mnist.onnx
    python -m export --int8                           # also artifacts/mnist.int8.onnx
    python -m export --lines                          # the line reader: best.ckpt of the latest lines run ->
                                                      # artifacts/mnist.lines.onnx (export/lines_export.py)

Writes PATH.onnx, the sidecar PATH.json (metadata and verification figures) and predict.pyz beside
them (the torch-free predictor in one file), and with --int8 PATH.int8.onnx. Nothing is written at
--out unless every check passed: onnx.checker, no training-mode ops, and onnxruntime (optimised and
unoptimised) agreeing with PyTorch on all 10,000 test images. Then copy PATH.onnx and predict.pyz to
the device: `python predict.pyz --model mnist.onnx photo.jpg`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import yaml

from export import pyz
from export.lines_export import export_lines
from export.onnx_export import OPSET, export_onnx, load_checkpoint, set_metadata, sha256
from export.quantize import CALIBRATION_IMAGES, quantize
from export.verify import VerificationError, check_graph, torch_logits, verify_fp32, verify_int8
from src.checkpoints import CheckpointError
from src.data import DataError, MNISTDataModule

MAX_INT8_DROP = 0.001  # 0.10 percentage points of test accuracy


def latest_best_checkpoint(logs: Path, lines: bool = False) -> Path:
    """The newest best.ckpt under `logs` of a digit classifier's run, or with `lines` of a line reader's."""
    candidates = sorted((p for p in logs.glob("**/checkpoints/best.ckpt") if _lines_run(p.parent.parent) == lines),
                        key=lambda p: p.stat().st_mtime)
    if not candidates:
        fit = "python -m src.train fit" + " --config configs/lines.yaml" * lines
        raise CheckpointError(f"no best.ckpt of a {'lines' if lines else 'digits'} run under {logs}/: train first "
                              f"(`{fit}`) or pass --ckpt PATH")
    return candidates[-1]


def _lines_run(run_dir: Path) -> bool:
    """Whether the run's config.yaml says `task: lines` (a run without one trained the digit classifier)."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(config, dict) and config.get("task") == "lines"


def as_unit_floats(images) -> np.ndarray:
    return (images.numpy()[:, None].astype(np.float32) / 255.0)  # uint8 (N, 28, 28) -> (N, 1, 28, 28) in [0, 1]


def export(ckpt: Path, out: Path, int8: bool, data_dir: str, log=print) -> dict:
    """Export, verify, and only then move the files into place. Returns the sidecar's content."""
    start = time.monotonic()
    model, info = load_checkpoint(ckpt)
    dm = MNISTDataModule(data_dir=data_dir, download=False)
    dm.setup("test")
    test_images, labels = as_unit_floats(dm.test_set.images), dm.test_set.labels.numpy()
    val = f", val {info['val_acc']:.2%}" if info["val_acc"] is not None else ""
    log(f"checkpoint   {ckpt} (epoch {info['epoch']}{val})")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = {k: out.with_name(f".{out.stem}.{os.getpid()}.{k}") for k in ("onnx", "int8.onnx", "raw.int8.onnx", "json", "pyz")}
    try:
        # The file is written once, metadata included, and what onnxruntime verifies is those very bytes:
        # nothing edits it after the check, and the sidecar's sha256 is the hash of the verified file.
        proto = export_onnx(model, tmp["onnx"])
        check_graph(proto, OPSET)
        reference = torch_logits(model, test_images)
        info["test_acc"] = float((reference.argmax(1) == labels).mean())
        set_metadata(proto, info)
        onnx.save(proto, str(tmp["onnx"]))
        fp32 = verify_fp32(str(tmp["onnx"]), reference, test_images, labels)  # same digits as PyTorch: same accuracy
        sidecar = {**info, "verification": fp32, "opset": OPSET, "file": out.name,
                   "bytes": tmp["onnx"].stat().st_size, "sha256": sha256(tmp["onnx"])}
        if int8:
            dm.setup("fit")  # calibrate on training images, never on test images
            calibration = as_unit_floats(dm.train_set.images[:CALIBRATION_IMAGES])
            quantize(tmp["onnx"], tmp["raw.int8.onnx"], calibration)
            int8_proto = onnx.load(str(tmp["raw.int8.onnx"]))
            check_graph(int8_proto, OPSET)
            # Its own accuracy goes into its metadata, so measure it first, then verify the file as written.
            measured = verify_int8(str(tmp["raw.int8.onnx"]), reference, test_images, labels, MAX_INT8_DROP)
            int8_info = {
                **{k: v for k, v in info.items() if k != "val_acc"},  # val_acc was measured on the fp32 weights
                "test_acc": measured["optimized"]["accuracy"],
                "fp32_test_acc": info["test_acc"],
                "quantization": f"static QDQ, per-channel int8 weights in 7 bits, uint8 activations, "
                f"calibrated on {CALIBRATION_IMAGES} training images (never test images)",
            }
            set_metadata(int8_proto, int8_info)
            onnx.save(int8_proto, str(tmp["int8.onnx"]))
            verified = verify_int8(str(tmp["int8.onnx"]), reference, test_images, labels, MAX_INT8_DROP)
            if verified["optimized"]["accuracy"] != int8_info["test_acc"]:
                raise VerificationError("the INT8 file as written scores differently from the one measured")
            sidecar["int8"] = {"file": out.with_suffix(".int8.onnx").name, "bytes": tmp["int8.onnx"].stat().st_size,
                               "sha256": sha256(tmp["int8.onnx"]), "test_acc": int8_info["test_acc"],
                               "quantization": int8_info["quantization"], "verification": verified}
        tmp["json"].write_text(json.dumps(sidecar, indent=2) + "\n")
        pyz.build(tmp["pyz"])  # the predictor for the device, one file: export/reader/ as a zipapp
        # Every check passed: move the files into place (a rename keeps the verified bytes), the sidecar last.
        if int8:
            os.replace(tmp["int8.onnx"], out.with_suffix(".int8.onnx"))
        elif out.with_suffix(".int8.onnx").exists():  # an INT8 copy of an earlier model: stale now
            out.with_suffix(".int8.onnx").unlink()
            log(f"removed      {out.with_suffix('.int8.onnx')}, an INT8 copy of the model this export replaces")
        os.replace(tmp["onnx"], out)
        os.replace(tmp["pyz"], out.with_name(pyz.NAME))
        os.replace(tmp["json"], out.with_suffix(".json"))
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)

    opt, unopt = fp32["optimized"], fp32["unoptimized"]
    log(f"exported     {out}  ({sidecar['bytes'] / 1024:.0f} KiB, opset {OPSET}, dynamic batch, input 'image' in [0, 1])")
    log(f"verified     onnxruntime = PyTorch on all {fp32['images']:,} test images (same digit every time); "
        f"max |logit diff| {opt['max_abs_logit_diff']:.1e} optimised, {unopt['max_abs_logit_diff']:.1e} unoptimised; "
        f"batches of {' and '.join(map(str, fp32['odd_batches']))} run")
    log(f"accuracy     {info['test_acc']:.2%} on the test set")
    if int8:
        q = sidecar["int8"]
        v = q["verification"]["optimized"]
        log(f"int8         {out.with_suffix('.int8.onnx')}  ({q['bytes'] / 1024:.0f} KiB, "
            f"{q['bytes'] / sidecar['bytes']:.2f}x the fp32 size), accuracy {v['accuracy']:.2%} "
            f"({-100 * v['accuracy_drop']:+.2f} points), same digit as fp32 on {v['agreement_with_fp32']:.2%}")
    predictor = out.with_name(pyz.NAME)
    log(f"predictor    {predictor}  ({predictor.stat().st_size / 1024:.0f} KiB, needs numpy + onnxruntime + pillow: "
        f"python {predictor.name} --model {out.name} photo.jpg)")
    log(f"sidecar      {out.with_suffix('.json')}  ({time.monotonic() - start:.1f} s)")
    return sidecar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, help="checkpoint to export (default: best.ckpt of the latest run of the task "
                        "under --logs)")
    parser.add_argument("--out", type=Path, help="ONNX file to write (default: artifacts/mnist.onnx, with --lines "
                        "artifacts/mnist.lines.onnx)")
    parser.add_argument("--int8", action="store_true", help="also write OUT.int8.onnx, statically quantized")
    parser.add_argument("--lines", action="store_true", help="export the line reader (a run of configs/lines.yaml)")
    parser.add_argument("--logs", type=Path, default=Path("logs"), help="where to look for runs (default: %(default)s)")
    parser.add_argument("--data-dir", default="data/mnist", help="MNIST files for verification (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out = args.out or Path("artifacts/mnist.lines.onnx" if args.lines else "artifacts/mnist.onnx")
    if args.out.suffix != ".onnx":
        parser.error(f"--out {args.out}: the file name must end in .onnx")
    if args.lines and args.int8:
        parser.error("--int8 quantizes the digit classifier; the line reader is exported in fp32 only")
    try:
        ckpt = args.ckpt or latest_best_checkpoint(args.logs, lines=args.lines)
        if args.lines:
            export_lines(ckpt, args.out, args.data_dir)
        else:
            export(ckpt, args.out, args.int8, args.data_dir)
    except (CheckpointError, VerificationError, DataError) as e:
        print(f"error: {e}; nothing was written to {args.out}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
