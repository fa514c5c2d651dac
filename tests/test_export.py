"""`python -m export` on the tiny run's checkpoint: one verified file, its contract, and its failures."""

import json
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import export.__main__ as cli
import export.verify
from export.onnx_export import OPSET, export_onnx, load_checkpoint, pool_after_norm, read_metadata, sha256
from export.verify import VerificationError, check_graph
from src.data import load_mnist
from src.model import Net
from tests.conftest import DATA


@pytest.fixture(scope="module")
def test_images():
    images, labels = load_mnist(DATA, train=False)
    return images[:, None].numpy().astype(np.float32) / 255, labels.numpy()


def test_one_self_contained_file_with_contract(exported):
    out = exported["onnx"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["mnist.int8.onnx", "mnist.json", "mnist.onnx", "predict.pyz"]
    assert zipfile.is_zipfile(out.with_name("predict.pyz"))  # the predictor for the device, export/reader/ in one file
    assert any(line.startswith(f"predictor    {out.with_name('predict.pyz')}") for line in exported["log"])
    proto = onnx.load(str(out))
    assert {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"] == OPSET == 18
    (inp,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "image" and dims == ["batch", 1, 28, 28]
    assert [o.name for o in proto.graph.output] == ["logits", "probs"]
    ops = [n.op_type for n in proto.graph.node]
    assert "Dropout" not in ops
    # BatchNorm right after a conv is folded into it; one after a pooling (model.pool_first) stays, in eval form.
    assert all(ops[i - 1] == "MaxPool" for i, op in enumerate(ops) if op == "BatchNormalization")
    check_graph(proto, OPSET)


@pytest.mark.parametrize("stem_stride", [1, 2])
def test_pool_first_stages_are_exported_in_the_foldable_order_with_identical_outputs(stem_stride):
    torch.manual_seed(0)
    net = Net(stem_stride=stem_stride, pool_first=True).eval()
    norms = [m for m in net.features if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.weight.data.uniform_(0.1, 2.0), m.bias.data.normal_(), m.running_mean.normal_(), m.running_var.uniform_(0.5, 2.0)
    norms[1].weight.data[3] = -0.5  # a negative scale: pooling does not commute with this stage's BatchNorm
    x = torch.randn(64, 1, 28, 28)
    before = net(x)
    layers = [*pool_after_norm(net).features, None]  # None: the end
    assert torch.equal(net(x), before)  # bit for bit
    kinds = [type(m).__name__ for m in layers]
    pools = [i for i, k in enumerate(kinds) if k == "MaxPool2d"]
    kept = [i for i in pools if layers[i + 1] is norms[1]]  # the stage with the negative scale keeps its order
    assert len(kept) == 1 and kinds[kept[0] - 1] == "Conv2d"
    assert all(kinds[i - 3:i] == ["Conv2d", "BatchNorm2d", "ReLU"] for i in pools if i not in kept)


def shipped_accuracy(path, test_images) -> float:
    """Test accuracy of a file as it lies on disk, run by onnxruntime from scratch."""
    images, labels = test_images
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs = np.concatenate([sess.run(["probs"], {"image": images[i:i + 2000]})[0] for i in range(0, len(images), 2000)])
    return float((probs.argmax(1) == labels).mean())


def test_metadata_and_sidecar(exported):
    meta = read_metadata(exported["onnx"])
    assert meta["labels"] == [str(d) for d in range(10)]
    assert meta["input"]["range"] == [0.0, 1.0] and meta["preprocessing"]["fit"] == 20
    assert meta["opset"] == OPSET and meta["checkpoint_sha256"] == sha256(exported["ckpt"])
    assert 0.9 < meta["val_acc"] <= 1
    sidecar = json.loads(exported["json"].read_text())
    assert sidecar["verification"]["images"] == 10_000
    assert any(line.startswith("verified") for line in exported["log"])


def test_shipped_bytes_are_the_verified_ones(exported, test_images, tiny_run):
    """Each file's hash is the sidecar's, and running it now gives the accuracy its own metadata claims."""
    sidecar = json.loads(exported["json"].read_text())
    fp32 = shipped_accuracy(exported["onnx"], test_images)
    assert sidecar["sha256"] == sha256(exported["onnx"])
    assert fp32 == read_metadata(exported["onnx"])["test_acc"] == sidecar["test_acc"]
    # The export ships the EMA weights: its accuracy is the one the training run logged for its best checkpoint.
    logged = EventAccumulator(str(tiny_run["run_dir"]))
    logged.Reload()
    assert fp32 == pytest.approx(logged.Scalars("hp/test_acc")[0].value, abs=1e-6)
    int8 = shipped_accuracy(exported["int8"], test_images)
    assert sidecar["int8"]["sha256"] == sha256(exported["int8"])
    assert int8 == read_metadata(exported["int8"])["test_acc"] == sidecar["int8"]["test_acc"]
    assert read_metadata(exported["int8"])["fp32_test_acc"] == fp32


def test_dynamic_batch_matches_pytorch(exported, test_images):
    images, _ = test_images
    model, _ = load_checkpoint(exported["ckpt"])
    sess = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 300):
        logits, probs = sess.run(None, {"image": images[:batch]})
        with torch.no_grad():
            ref_logits, ref_probs = model(torch.from_numpy(images[:batch]))
        assert logits.shape == probs.shape == (batch, 10)
        np.testing.assert_allclose(logits, ref_logits.numpy(), atol=1e-4)
        np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)


def test_int8_is_small_and_accurate(exported, test_images):
    def payload(path):  # bytes less the metadata, which both files carry alike (the preprocessing table:
        #                 about 2 KB, a fixed share that tips this test's small net over a third)
        return path.stat().st_size - sum(len(p.key) + len(p.value) for p in onnx.load(str(path)).metadata_props)
    assert payload(exported["int8"]) <= payload(exported["onnx"]) / 3
    images, labels = test_images
    sess = ort.InferenceSession(str(exported["int8"]), providers=["CPUExecutionProvider"])
    assert sess.run(["probs"], {"image": images[:7]})[0].shape == (7, 10)
    proto = onnx.load(str(exported["int8"]))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "ConvInteger" not in ops
    # Weights in 7 bits, so that uint8 x int8 pairs fit the int16 sums of CPUs without VNNI.
    weights = [onnx.numpy_helper.to_array(t) for t in proto.graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("weight_quantized")]
    assert len(weights) == 5 and all(np.abs(w).max() == 64 for w in weights)  # every layer's range used, no more
    fused = exported["sidecar"]["int8"]["verification"]["fused_vs_emulated"]
    assert fused["different_digits"] <= export.verify.MAX_FUSED_DIFFERENT_DIGITS and fused["max_abs_logit_diff"] < 0.5


def test_training_mode_graph_is_rejected(exported, tmp_path):
    model, _ = load_checkpoint(exported["ckpt"])
    proto = export_onnx(model.train(), tmp_path / "train_mode.onnx")  # the to_onnx trap: no eval()
    with pytest.raises(VerificationError, match="Dropout|BatchNormalization"):
        check_graph(proto, OPSET)


def test_failed_verification_leaves_nothing(exported, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export.verify, "LOGIT_TOLERANCE", 0.0)  # no float export is bit-exact
    out = tmp_path / "sub" / "model.onnx"
    code = cli.main(["--ckpt", str(exported["ckpt"]), "--out", str(out), "--data-dir", str(DATA)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: onnxruntime") and "nothing was written" in err[0]
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("module, gate, impossible, message", [
    (cli, "MAX_INT8_DROP", -0.5, "points below fp32"),  # demand a 50-point gain
    (export.verify, "MAX_FUSED_DIFFERENT_DIGITS", -1, "integer kernels and the QDQ graph"),  # fewer than none differing
])
def test_int8_gates_fail_the_export(exported, tmp_path, monkeypatch, capsys, module, gate, impossible, message):
    monkeypatch.setattr(module, gate, impossible)
    out = tmp_path / "model.onnx"
    code = cli.main(["--ckpt", str(exported["ckpt"]), "--out", str(out), "--int8", "--data-dir", str(DATA)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "INT8" in err[0] and message in err[0] and "keep the fp32 model" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_latest_run_is_the_default(tiny_run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert cli.main(["--logs", str(tiny_run["work"] / "logs"), "--out", str(out), "--data-dir", str(DATA)]) == 0
    assert f"checkpoint   {tiny_run['best']}" in capsys.readouterr().out
    assert out.is_file() and out.with_suffix(".json").is_file()


@pytest.mark.parametrize("problem", ["missing", "not a checkpoint", "truncated", "other model", "no runs"])
def test_bad_checkpoint_is_one_line(problem, exported, tmp_path, capsys):
    ckpt = tmp_path / "bad.ckpt"
    args = ["--ckpt", str(ckpt)]
    if problem == "not a checkpoint":
        ckpt.write_text("hello")
    elif problem == "truncated":
        ckpt.write_bytes(exported["ckpt"].read_bytes()[:5000])
    elif problem == "other model":
        c = torch.load(exported["ckpt"], weights_only=True)
        c["hyper_parameters"]["channels"] = [8, 16, 32]
        torch.save(c, ckpt)
    elif problem == "no runs":
        args = ["--logs", str(tmp_path)]
    code = cli.main([*args, "--out", str(tmp_path / "m.onnx"), "--data-dir", str(DATA)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: "), err
    assert not (tmp_path / "m.onnx").exists()
