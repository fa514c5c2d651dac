import pytest
import torch

from src.model import Net, complexity
from src.module import MNISTClassifier


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


def test_module_trains_and_averages():
    module = MNISTClassifier(channels=(8, 16, 32), hidden=16, ema_decay=0.9)
    assert all(isinstance(v, (int, float, bool, tuple, list)) for v in module.hparams.values())
    optimizer = torch.optim.SGD(module.net.parameters(), lr=0.1)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    before = [p.clone() for p in module.ema.parameters()]
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(module.net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        module.on_train_batch_end(None, None, 0)
    # The average moved towards the trained weights, but is not equal to them.
    for b, e, p in zip(before, module.ema.parameters(), module.net.parameters()):
        assert not torch.equal(b, e) and not torch.equal(e, p)
    assert not any(p.requires_grad for p in module.ema.parameters())
    module.eval()
    assert torch.equal(module(x), module.ema(x))
