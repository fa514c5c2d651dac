"""The CNN, as a plain `nn.Module` with no Lightning in it (this is what gets exported to ONNX).

The shape of the Keras notebook this project started from, made faster and more accurate:
stages of 3x3 convolution + BatchNorm + ReLU, each ending in 2x2 max-pooling, then a dense layer
with dropout and the 10-way classifier. Input: (B, 1, 28, 28) normalised floats; output: logits.

Size per recipe (`python -m src.model` prints these from the configs):

    config    channels       convs/stage  hidden  parameters  multiply-accumulates / image
    fast      (16, 32, 64)   1            0          29,178     1.92 M
    default   (32, 64, 128)  1            128       242,634     7.61 M
    best      (32, 64, 128)  2            256           ...
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    # No conv bias: the BatchNorm shift that follows makes it redundant.
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Net(nn.Module):
    def __init__(
        self,
        channels: tuple[int, ...] = (32, 64, 128),
        convs_per_stage: int = 1,
        hidden: int = 128,
        dropout: float = 0.25,
    ):
        """
        Args:
            channels: output channels of each stage; each stage halves the resolution (28 -> 14 -> 7 -> 3).
            convs_per_stage: 3x3 conv layers per stage before its pooling.
            hidden: width of the dense layer before the classifier; 0 for none.
            dropout: dropout probability before each dense layer.
        """
        super().__init__()
        layers, c_in, size = [], 1, 28
        for c_out in channels:
            for _ in range(convs_per_stage):
                layers += conv_bn_relu(c_in, c_out)
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
            size //= 2
        self.features = nn.Sequential(*layers)  # (B, 1, 28, 28) -> (B, channels[-1], size, size)
        flat = c_in * size * size
        if hidden:
            self.classifier = nn.Sequential(
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(flat, hidden, bias=False),
                nn.BatchNorm1d(hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, 10),
            )
        else:
            self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, 10) logits


def complexity(net: nn.Module) -> tuple[int, int]:
    """(parameters, multiply-accumulates per 28x28 image) of conv and linear layers."""
    macs = 0

    def count(module: nn.Module, _, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += out[0].numel() * k
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = net.training
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 1, 28, 28))
    net.train(was_training)
    for h in hooks:
        h.remove()
    return sum(p.numel() for p in net.parameters()), macs
