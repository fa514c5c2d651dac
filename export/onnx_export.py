"""Checkpoint -> one self-contained ONNX file with its input contract in the metadata.

The exported graph takes what a camera pipeline has, not what training used: `image`, float32
(batch, 1, 28, 28) pixel values in [0, 1], light digit on dark background (MNIST's polarity).
The normalisation is inside the graph; it returns `logits` and `probs` (softmax), both (batch, 10).
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from export.reader import params
from src.checkpoints import CheckpointError, check_compatible, check_hyperparameters, is_line_reader, read_checkpoint
from src.data import MEAN, STD
from src.model import Net
from src.module import MNISTClassifier

OPSET = 18  # the lowest the torch.export-based exporter emits; onnxruntime >= 1.14 runs it
LABELS = [str(d) for d in range(10)]
INPUT = {"name": "image", "shape": ["batch", 1, 28, 28], "dtype": "float32", "range": [0.0, 1.0]}
# Every number of the preprocessing the predictor (export/reader/) applies to a photo or scan before inference,
# defined once in export/reader/params.py; written into the model's metadata so the predictor and the browser
# page read them back.
PREPROCESSING = params.PREPROCESSING


class Deployable(nn.Module):
    """The bare trained net plus what deployment needs: [0, 1] input scaling and softmax."""

    def __init__(self, net: Net):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net((image - MEAN) / STD)  # (B, 1, 28, 28) in [0, 1] -> (B, 10)
        return logits, logits.softmax(dim=1)


def pool_after_norm(net: Net) -> Net:
    """A `pool_first` net's conv -> pool -> BatchNorm -> ReLU stages as conv -> BatchNorm -> ReLU -> pool,
    wherever that gives the same output, so that the exporter folds each BatchNorm into its conv.

    In eval mode BatchNorm is y = a * x + b per channel, with a of the sign of its weight. Max-pooling
    commutes with such a map when a >= 0 (and with ReLU always), bit for bit: every step of it is
    monotonic, rounding included. A stage with a negative scale keeps its trained order.
    """
    layers = list(net.features)
    for i in range(len(layers) - 2):
        pool, norm, act = layers[i : i + 3]
        if isinstance(pool, nn.MaxPool2d) and isinstance(norm, nn.BatchNorm2d) and bool((norm.weight >= 0).all()):
            layers[i : i + 3] = [norm, act, pool]
    net.features = nn.Sequential(*layers)
    return net


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def trained_module(path: Path, ckpt: dict, model_class: type):
    """`model_class` built from the checkpoint's own hyperparameters, its weights loaded, and facts about them
    (for the sidecar and the metadata); `score`: the best validation score ModelCheckpoint kept, None for last.ckpt."""
    check_hyperparameters(path, ckpt, model_class)
    # LightningCLI adds private keys such as `_instantiator`; the model's own are the rest.
    hparams = {k: v for k, v in ckpt["hyper_parameters"].items() if not k.startswith("_")}
    module = model_class(**hparams)
    check_compatible(path, ckpt, module)
    module.load_state_dict(ckpt["state_dict"])
    callback = next((v for k, v in ckpt.get("callbacks", {}).items() if k.startswith("ModelCheckpoint")), {})
    score = callback.get("best_model_score")
    info = {
        "checkpoint": str(path),
        "checkpoint_sha256": sha256(path),
        "epoch": ckpt.get("epoch"),
        "hyperparameters": {k: list(v) if isinstance(v, tuple) else v for k, v in hparams.items()},
    }
    return module, info, float(score) if score is not None and path.name != "last.ckpt" else None


def load_checkpoint(path: str | Path) -> tuple[Deployable, dict]:
    """The weights to ship (the moving average when trained with one), in eval mode, and facts about them."""
    path = Path(path)
    ckpt = read_checkpoint(path)  # plain data only (weights_only); one-line CheckpointError otherwise
    if is_line_reader(ckpt):
        raise CheckpointError(f"{path} is a line reader's checkpoint (configs/lines.yaml), not a digit classifier's: "
                              "pass the best.ckpt of a digits run (`python -m src.train fit`)")
    module, info, score = trained_module(path, ckpt, MNISTClassifier)
    net = pool_after_norm(module.eval_net.eval().to(memory_format=torch.contiguous_format))
    return Deployable(net).eval(), {**info, "val_acc": score}


def export_onnx(model: Deployable, path: str | Path) -> onnx.ModelProto:
    """Write `model` to `path` as one ONNX file (no external data) with a dynamic batch axis."""
    example = torch.rand(2, 1, 28, 28)
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["image"],
            output_names=["logits", "probs"],
            opset_version=OPSET,
            dynamo=True,
            external_data=False,  # one file to copy to the device
            dynamic_shapes={"image": {0: torch.export.Dim("batch")}},
            optimize=True,
            verbose=False,
        )
    proto = strip_debug_info(onnx.load(str(path)))
    # Name the batch axis of every input and output the same way.
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return proto


def strip_debug_info(proto: onnx.ModelProto) -> onnx.ModelProto:
    """torch records a stack trace and source names per node: debugging aids, 10% of a small file. Dropped."""
    for item in [*proto.graph.node, *proto.graph.input, *proto.graph.output, *proto.graph.value_info, *proto.graph.initializer]:
        del item.metadata_props[:]
        item.doc_string = ""
    return proto


def write_metadata(proto: onnx.ModelProto, props: dict) -> None:
    """props as the model's metadata_props, each value JSON (metadata values are strings)."""
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    proto.producer_name = "mnist-lightning"


def set_metadata(proto: onnx.ModelProto, info: dict) -> None:
    """Store the input contract and the provenance in metadata_props (values are strings: JSON)."""
    props = {
        "labels": LABELS,
        "input": INPUT,
        "preprocessing": PREPROCESSING,
        "opset": OPSET,
        **{k: v for k, v in info.items() if k != "checkpoint"},
        "source_checkpoint": Path(info["checkpoint"]).name,
    }
    write_metadata(proto, props)
    proto.doc_string = "MNIST digit classifier: image (batch, 1, 28, 28) in [0, 1] -> logits, probs (batch, 10)"


def read_metadata(path_or_proto) -> dict:
    proto = onnx.load(str(path_or_proto), load_external_data=False) if not isinstance(path_or_proto, onnx.ModelProto) else path_or_proto
    return {p.key: json.loads(p.value) for p in proto.metadata_props}


class _quiet_exporter:
    """The dynamo exporter logs its progress at INFO/WARNING level; a user only needs our summary."""

    def __enter__(self):
        self.level = logging.root.manager.disable
        logging.disable(logging.WARNING)

    def __exit__(self, *exc):
        logging.disable(self.level)
