"""Proof that an exported file computes what the PyTorch model computes, on the whole test set."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch

LOGIT_TOLERANCE = 1e-4  # max |onnxruntime - PyTorch| over all 10 logits of all test images
ODD_BATCHES = (1, 7)  # the dynamic batch axis must serve single images and odd sizes too
MAX_FUSED_DIFFERENT_DIGITS = 5  # of 10,000; rounding flipped none on Zen 3, int16 saturation there 20-34


class VerificationError(Exception):
    """The exported model does not match the reference; the message says how, in one line."""


def check_graph(proto: onnx.ModelProto, opset: int) -> None:
    """Valid ONNX, self-contained, inference-mode only, at the pinned opset."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise VerificationError(f"onnx.checker rejected the graph: {str(e).splitlines()[0]}") from None
    nodes = list(proto.graph.node)
    if any(n.op_type == "Dropout" for n in nodes):
        raise VerificationError("the graph contains Dropout: export the network in eval mode")
    for n in nodes:
        training = any(a.name == "training_mode" and a.i for a in n.attribute)
        if n.op_type == "BatchNormalization" and (training or len(n.output) > 1):
            raise VerificationError("the graph contains training-mode BatchNormalization: export in eval mode")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        raise VerificationError("the weights live in an external data file: export with external_data=False")
    found = {o.domain or "ai.onnx": o.version for o in proto.opset_import}.get("ai.onnx")
    if found != opset:
        raise VerificationError(f"the graph has opset {found}, expected the pinned opset {opset}")


def session(path: str, optimize: bool = True, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    if threads:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Logits (N, 10) for float32 images (N, 1, 28, 28) in [0, 1]."""
    return np.concatenate([sess.run(["logits"], {"image": images[i : i + batch]})[0] for i in range(0, len(images), batch)])


@torch.no_grad()
def torch_logits(model: torch.nn.Module, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    model.eval()
    return np.concatenate([model(torch.from_numpy(images[i : i + batch]))[0].numpy() for i in range(0, len(images), batch)])


def _odd_batches(sess: ort.InferenceSession, images: np.ndarray, full: np.ndarray, tolerance: float) -> None:
    for b in ODD_BATCHES:
        out = sess.run(["logits", "probs"], {"image": images[:b]})
        if out[0].shape != (b, 10) or out[1].shape != (b, 10):
            raise VerificationError(f"batch of {b} gave shapes {out[0].shape}, {out[1].shape}, expected ({b}, 10)")
        if np.abs(out[0] - full[:b]).max() > tolerance or not np.allclose(out[1].sum(1), 1, atol=1e-4):
            raise VerificationError(f"batch of {b} gives other outputs than the same images in a large batch")


def verify_fp32(path: str, reference: np.ndarray, images: np.ndarray, labels: np.ndarray) -> dict:
    """onnxruntime, fully optimised and unoptimised, against PyTorch's logits on every image."""
    result = {"images": len(labels), "tolerance": LOGIT_TOLERANCE, "odd_batches": list(ODD_BATCHES)}
    for name, optimize in (("optimized", True), ("unoptimized", False)):
        sess = session(path, optimize)
        logits = run(sess, images)
        diff = float(np.abs(logits - reference).max())
        mismatched = int((logits.argmax(1) != reference.argmax(1)).sum())
        result[name] = {"max_abs_logit_diff": diff, "different_digits": mismatched,
                        "accuracy": float((logits.argmax(1) == labels).mean())}
        if mismatched:
            raise VerificationError(f"onnxruntime ({name}) predicts another digit than PyTorch for {mismatched} test images")
        if diff > LOGIT_TOLERANCE:
            raise VerificationError(f"onnxruntime ({name}) logits differ from PyTorch by {diff:.2e} > {LOGIT_TOLERANCE:.0e}")
        _odd_batches(sess, images, logits, 1e-4)
    return result


def verify_int8(path: str, fp32_logits: np.ndarray, images: np.ndarray, labels: np.ndarray, max_drop: float) -> dict:
    """The quantized model keeps the fp32 model's accuracy within `max_drop` (a fraction, 0.001 = 0.1 points),
    and its fused integer kernels compute what its QDQ graph says (no accumulator overflow on this CPU)."""
    result = {"images": len(labels), "max_accuracy_drop": max_drop, "odd_batches": list(ODD_BATCHES)}
    fp32_acc = float((fp32_logits.argmax(1) == labels).mean())
    outputs = {}
    for name, optimize in (("optimized", True), ("unoptimized", False)):
        sess = session(path, optimize)
        logits = outputs[name] = run(sess, images)
        acc = float((logits.argmax(1) == labels).mean())
        result[name] = {"accuracy": acc, "accuracy_drop": fp32_acc - acc,
                        "agreement_with_fp32": float((logits.argmax(1) == fp32_logits.argmax(1)).mean())}
        if fp32_acc - acc > max_drop + 1e-9:
            raise VerificationError(f"INT8 ({name}) test accuracy {acc:.2%} is {100 * (fp32_acc - acc):.2f} points "
                                    f"below fp32 {fp32_acc:.2%} (allowed {100 * max_drop:.2f}): keep the fp32 model")
        _odd_batches(sess, images, logits, 1e-3)  # int8 kernels may block differently per batch size
    # Optimized, onnxruntime fuses each QDQ group into an integer kernel; unoptimized, it emulates the
    # graph in float. The two differ by rounding only, unless the kernel's accumulators overflow.
    fused, emulated = outputs["optimized"], outputs["unoptimized"]
    differing = int((fused.argmax(1) != emulated.argmax(1)).sum())
    result["fused_vs_emulated"] = {"different_digits": differing, "max_abs_logit_diff": float(np.abs(fused - emulated).max())}
    if differing > MAX_FUSED_DIFFERENT_DIGITS:
        raise VerificationError(f"INT8 integer kernels and the QDQ graph they run disagree on {differing} test images "
                                f"(an int16 overflow on this CPU?): keep the fp32 model")
    return result
