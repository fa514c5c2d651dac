"""The line reader (a `task: lines` run, configs/lines.yaml) as one verified ONNX file: `python -m export --lines`.

The graph is the bare `LineNet` in eval mode and a softmax over its 11 classes: a line (batch, 1, 32, width) of
ink in [0, 1] on 0, width a multiple of 4 -> logits and probabilities (batch, 11, width / 4), class 10 the blank.
Before anything is written, onnxruntime (optimised and not) must read every test line exactly as PyTorch does
(the same digits, greedy decoding) with probabilities within 1e-4 of PyTorch's.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from export.onnx_export import OPSET, _quiet_exporter, sha256, strip_debug_info, trained_module, write_metadata
from export.verify import VerificationError, check_graph, session
from src.checkpoints import CheckpointError, is_line_reader, read_checkpoint
from src.line_data import INK_HEIGHT, PAD, LinesDataModule
from src.line_model import BLANK, HEIGHT, STRIDE, LineNet, greedy_decode
from src.line_module import LineReader

LABELS = [str(d) for d in range(10)] + ["blank"]
INPUT = {"name": "line", "shape": ["batch", 1, HEIGHT, "width"], "dtype": "float32", "range": [0.0, 1.0],
         "width": f"a multiple of {STRIDE}"}
# How a line is made for the network (src/line_data.py's to_line): cropped to its ink (> ink), `pad` px of empty
# paper around it at MNIST's scale, where a training line's ink is ink_height px tall, scaled to `height` px;
# each output column covers `stride` px. The reader (export/reader/lines.py) makes a photo's line so. keep: where
# the model counts other digits than the reader's grouping, the grouping's digits stand when the model finds them
# within a factor of e^keep as likely as its own reading (CTC's sum over alignments; chosen on tests.numbers
# seed 5, docs/results.md).
LINE = {"height": HEIGHT, "stride": STRIDE, "blank": BLANK, "pad": PAD, "ink": 0.08, "ink_height": INK_HEIGHT,
        "keep": 4.0}
MAX_PROB_DIFF = 1e-4


class LineDeployable(nn.Module):
    """The bare line net plus a softmax over its classes."""

    def __init__(self, net: LineNet):
        super().__init__()
        self.net = net

    def forward(self, line: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(line)  # (B, 1, 32, W) in [0, 1] -> (B, 11, W / 4)
        return logits, logits.softmax(dim=1)


def load_line_checkpoint(path: str | Path) -> tuple[LineDeployable, dict]:
    """The line net to ship, in eval mode, and facts about it; a one-line CheckpointError for any other file."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    if not is_line_reader(ckpt):
        raise CheckpointError(f"{path} is a digit classifier's checkpoint, not a line reader's: pass the best.ckpt "
                              "of a lines run (`python -m src.train fit --config configs/lines.yaml`)")
    module, info, score = trained_module(path, ckpt, LineReader)
    info["val_line_acc"] = score
    # how the run wrote its lines (digits per line, touching pairs, the test set's size and seed)
    info["data"] = {k: v for k, v in ckpt.get("datamodule_hyper_parameters", {}).items()
                    if k in ("digits", "touch", "test_lines", "split_seed")}
    return LineDeployable(module.net).eval(), info


def export_line_onnx(model: LineDeployable, path: str | Path) -> onnx.ModelProto:
    """Write `model` to `path` as one ONNX file with dynamic batch and width axes."""
    with _quiet_exporter():
        torch.onnx.export(
            model, (torch.rand(2, 1, HEIGHT, 64),), str(path), input_names=["line"], output_names=["logits", "probs"],
            opset_version=OPSET, dynamo=True, external_data=False, optimize=True, verbose=False,
            dynamic_shapes={"line": {0: torch.export.Dim("batch"), 3: STRIDE * torch.export.Dim("columns", min=2)}},
        )
    proto = strip_debug_info(onnx.load(str(path)))
    for value in proto.graph.input:
        value.type.tensor_type.shape.dim[0].dim_param, value.type.tensor_type.shape.dim[3].dim_param = "batch", "width"
    for value in proto.graph.output:
        value.type.tensor_type.shape.dim[0].dim_param, value.type.tensor_type.shape.dim[2].dim_param = "batch", "columns"
    return proto


def set_line_metadata(proto: onnx.ModelProto, info: dict) -> None:
    props = {"task": "lines", "labels": LABELS, "input": INPUT, "line": LINE, "opset": OPSET,
             **{k: v for k, v in info.items() if k != "checkpoint"}, "source_checkpoint": Path(info["checkpoint"]).name}
    write_metadata(proto, props)
    proto.doc_string = ("MNIST line reader: line (batch, 1, 32, width) in [0, 1] -> logits, probs (batch, 11, width / 4), "
                        "class 10 the blank; greedy CTC decoding")


def verify_lines(path: str, model: LineDeployable, batches) -> dict:
    """onnxruntime against PyTorch on every batch of test lines: the same digits read, probabilities close."""
    out = {}
    for name, optimize in (("optimized", True), ("unoptimized", False)):
        sess, diff, same, right, lines = session(path, optimize), 0.0, 0, 0, 0
        for x, _, _, lengths, texts, _ in batches:
            with torch.no_grad():
                ref = model(x)[1].numpy()
            got = sess.run(["probs"], {"line": x.numpy()})[0]
            diff = max(diff, float(np.abs(got - ref).max()))
            ours, theirs = greedy_decode(torch.from_numpy(got), lengths), greedy_decode(torch.from_numpy(ref), lengths)
            same += sum(a == b for a, b in zip(ours, theirs))
            right += sum(a == t for a, t in zip(ours, texts))
            lines += len(texts)
        if same != lines or diff > MAX_PROB_DIFF:
            raise VerificationError(f"onnxruntime ({name}) reads {lines - same} of {lines} test lines otherwise than "
                                    f"PyTorch (max |probability diff| {diff:.1e}, allowed {MAX_PROB_DIFF:.0e})")
        out[name] = {"lines": lines, "same_as_pytorch": same, "max_abs_prob_diff": diff, "line_acc": right / lines}
    return out


def export_lines(ckpt: Path, out: Path, data_dir: str, log=print) -> dict:
    """Export, verify, and only then move the file and its sidecar into place. Returns the sidecar's content."""
    start = time.monotonic()
    model, info = load_line_checkpoint(ckpt)
    dm = LinesDataModule(**info["data"], data_dir=data_dir, download=False)  # the run's own test lines
    dm.setup("test")
    batches = list(dm.test_dataloader())
    val = f", val {info['val_line_acc']:.2%} of lines" if info["val_line_acc"] is not None else ""
    log(f"checkpoint   {ckpt} (epoch {info['epoch']}{val})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = {k: out.with_name(f".{out.stem}.{os.getpid()}.{k}") for k in ("onnx", "json")}
    try:
        proto = export_line_onnx(model, tmp["onnx"])
        check_graph(proto, OPSET)
        info["test_lines"] = dm.test_description
        set_line_metadata(proto, info)
        onnx.save(proto, str(tmp["onnx"]))
        checked = verify_lines(str(tmp["onnx"]), model, batches)
        sidecar = {**info, "line_acc": checked["optimized"]["line_acc"], "verification": checked, "opset": OPSET,
                   "file": out.name, "bytes": tmp["onnx"].stat().st_size, "sha256": sha256(tmp["onnx"])}
        tmp["json"].write_text(json.dumps(sidecar, indent=2) + "\n")
        os.replace(tmp["onnx"], out)
        os.replace(tmp["json"], out.with_suffix(".json"))
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    v = checked["optimized"]
    log(f"exported     {out}  ({sidecar['bytes'] / 1024:.0f} KiB, opset {OPSET}, dynamic batch and width, "
        f"input 'line' (batch, 1, {HEIGHT}, width) in [0, 1])")
    log(f"verified     onnxruntime = PyTorch on all {v['lines']:,} test lines (the same digits every time); max |probability "
        f"diff| {v['max_abs_prob_diff']:.1e} optimised, {checked['unoptimized']['max_abs_prob_diff']:.1e} unoptimised")
    log(f"accuracy     {v['line_acc']:.2%} of the {dm.test_description} read exactly")
    log(f"sidecar      {out.with_suffix('.json')}  ({time.monotonic() - start:.1f} s)")
    return sidecar
