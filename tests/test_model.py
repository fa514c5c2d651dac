import lightning as L
import pytest
import torch

from src.data import MNISTDataModule

from src.model import Net, complexity
from src.module import MNISTClassifier
from tests.conftest import DATA


def expected_params(channels, convs, hidden):
    """Conv weights + BatchNorm (scale, shift) per stage, then the dense head, counted by hand."""
    n, c_in = 0, 1
    for c in channels:
        for _ in range(convs):
            n += 9 * c_in * c + 2 * c
            c_in = c
    side = 28 >> len(channels)  # 28 -> 14 -> 7 -> 3 -> 1, one pooling per stage
    flat = c_in * side * side
    return n + (flat * hidden + 2 * hidden + hidden * 10 + 10 if hidden else flat * 10 + 10)


@pytest.mark.parametrize("channels,convs,hidden", [
    ((16, 32, 64, 128), 1, 0), ((32, 64, 128), 1, 128), ((16, 32, 64), 1, 0), ((32, 64, 128, 256), 2, 256)])
def test_shapes_and_parameter_count(channels, convs, hidden):
    net = Net(channels, convs, hidden).eval()
    for batch in (1, 7, 256):
        assert net(torch.randn(batch, 1, 28, 28)).shape == (batch, 10)
    params, macs = complexity(net)
    assert params == sum(p.numel() for p in net.parameters()) == expected_params(channels, convs, hidden)
    first_conv = 28 * 28 * 9 * channels[0]
    assert first_conv < macs < 100 * first_conv * max(1, convs * convs)


def test_default_model_size():
    params, macs = complexity(Net())
    assert params == 98_682
    # conv 1->16 @28x28, 16->32 @14x14, 32->64 @7x7, 64->128 @3x3, linear 128->10
    assert macs == 28 * 28 * 9 * 16 + 14 * 14 * 9 * 16 * 32 + 7 * 7 * 9 * 32 * 64 + 3 * 3 * 9 * 64 * 128 + 128 * 10


def test_dropout_only_in_training():
    net = Net(dropout=0.5)
    x = torch.randn(8, 1, 28, 28)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_not_digits_are_trained_towards_equal_probabilities():
    module = MNISTClassifier(label_smoothing=0.1)
    module.log = lambda *a, **k: None  # no trainer to log to
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([3, 1, 4, -1, 5, -1])  # -1: src.pieces.NOT_DIGIT
    module.train()
    torch.manual_seed(0)
    loss = module.training_step((x, y), 0)
    torch.manual_seed(0)  # the same dropout
    logp = module.net(x).log_softmax(1)
    digit = y >= 0
    # a digit: cross-entropy with smoothed targets; a not-digit: cross-entropy with 1/10 for each class
    smoothed = -(0.9 * logp[digit].gather(1, y[digit, None])[:, 0] + 0.1 * logp[digit].mean(1))
    expected = torch.cat([smoothed, -logp[~digit].mean(1)]).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert module.train_acc.tp.sum() + module.train_acc.fn.sum() == 4  # accuracy over the four digits alone


class RecordWeights(L.Callback):
    """The live weights after every optimizer step."""

    def __init__(self):
        self.steps = []

    def on_train_batch_end(self, trainer, module, *args):
        self.steps.append((trainer.global_step, {k: v.clone() for k, v in module.net.state_dict().items()}))


def test_ema_follows_the_configured_decay_after_warmup(tmp_path):
    """Through a real Trainer: the average copies the weights for ema_warmup_steps, then runs the configured decay."""
    warmup, decay, steps = 5, 0.9, 12
    L.seed_everything(0)
    module = MNISTClassifier(channels=(8, 16, 32), hidden=16, ema_decay=decay, ema_warmup_steps=warmup)
    data = MNISTDataModule(data_dir=str(DATA), batch_size=32, val_size=59_000)
    record = RecordWeights()
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, limit_val_batches=0, logger=False, callbacks=[record],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    trainer.fit(module, data)
    assert [s for s, _ in record.steps] == list(range(1, steps + 1))
    expected = {}
    for step, weights in record.steps:  # by hand: copy during the warm-up, then ema = d * ema + (1 - d) * w
        for k, w in weights.items():
            if step <= warmup or not w.is_floating_point():
                expected[k] = w.clone()
            else:
                expected[k] = decay * expected[k] + (1 - decay) * w
    ema = module.ema.state_dict()
    assert {k for k in ema if "running_mean" in k} and set(ema) == set(expected)  # BatchNorm buffers included
    for k in expected:
        torch.testing.assert_close(ema[k], expected[k], rtol=1e-5, atol=1e-6, msg=k)
    # The average is not the live weights, and not what the old warm-up ((1 + t) / (10 + t)) would give.
    assert not torch.equal(ema["features.0.weight"], module.net.state_dict()["features.0.weight"])
    assert not any(p.requires_grad for p in module.ema.parameters())
    module.eval()
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(module(x), module.ema(x))


@pytest.mark.parametrize("convs,stem_stride", [(1, 1), (1, 2), (2, 1)])
def test_pool_first_moves_each_pooling_before_its_batchnorm_and_keeps_the_function(convs, stem_stride):
    plain, first = Net(convs_per_stage=convs, stem_stride=stem_stride), Net(convs_per_stage=convs, stem_stride=stem_stride, pool_first=True)
    kinds = lambda net: [type(m).__name__ for m in net.features]
    assert sorted(kinds(plain)) == sorted(kinds(first))  # the same layers and parameters, reordered
    assert kinds(first).count("MaxPool2d") == 4 - (stem_stride == 2)
    for i, kind in enumerate(kinds(first)):
        if kind == "MaxPool2d":
            assert kinds(first)[i - 1:i + 3] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    # In eval mode BatchNorm is a per-channel affine map; with a positive scale it commutes with
    # max-pooling (and ReLU does anyway), so the same weights give the same logits in either order.
    torch.manual_seed(0)
    for m in plain.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 2.0), m.bias.data.normal_(), m.running_mean.normal_(), m.running_var.uniform_(0.5, 2.0)
    for a, b in zip(plain.state_dict().values(), first.state_dict().values(), strict=True):
        b.copy_(a)
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(first.eval()(x), plain.eval()(x))
    # In training, BatchNorm's batch statistics come from the pooled values: a different model.
    assert not torch.allclose(first.train().features(x), plain.train().features(x))  # (8, 128, 1, 1)
