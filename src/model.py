"""The CNN, as a plain `nn.Module` with no Lightning in it (this is what gets exported to ONNX).

The shape of the Keras notebook this project started from, made faster and more accurate:
stages of 3x3 convolution + BatchNorm + ReLU, each ending in 2x2 max-pooling, then dropout and the
10-way classifier (with an optional dense layer before it, as in the notebook). Four stages take
the 28x28 digit down to 1x1. Input: (B, 1, 28, 28) normalised floats; output: (B, 10) logits.
The default and fast recipes pool straight after each stage's last convolution, before its BatchNorm and ReLU
(`pool_first`): the same layers, with BatchNorm and ReLU run on a quarter of the pixels.

Size per recipe (`python -m src.model` prints these from configs/):

    config    channels             convs/stage  stem stride  parameters  multiply-accumulates / image
    default   (16, 32, 64, 128)    1            1                98,682    2.58 M
    fast      (16, 32, 64, 128)    1            2                98,682    2.50 M
    best      (32, 64, 128, 256)   2            1             1,175,210   37.09 M
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1, pool: bool = False, pool_first: bool = False) -> list[nn.Module]:
    """3x3 conv, BatchNorm, ReLU, then 2x2 max-pooling if `pool`; with `pool_first`, the pooling
    comes straight after the conv, so BatchNorm and ReLU run on a quarter of the pixels."""
    # No conv bias: the BatchNorm shift that follows makes it redundant.
    conv = [nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)]
    pooling = [nn.MaxPool2d(2)] if pool else []
    norm_act = [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return conv + pooling + norm_act if pool_first else conv + norm_act + pooling


class Net(nn.Module):
    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        convs_per_stage: int = 1,
        hidden: int = 0,
        dropout: float = 0.25,
        stem_stride: int = 1,
        pool_first: bool = False,
    ):
        """
        Args:
            channels: output channels of each stage; each stage halves the resolution (28 -> 14 -> 7 -> 3 -> 1).
            convs_per_stage: 3x3 conv layers per stage before its pooling.
            hidden: width of the dense layer before the classifier; 0 for none.
            dropout: dropout probability before each dense layer.
            stem_stride: 2 downsamples early: the first conv strides over the 28x28 image instead of the
                first stage pooling it, so no layer runs at full resolution (less time and memory).
            pool_first: pool each stage right after its last conv, before BatchNorm and ReLU (as airbench
                does): BatchNorm and ReLU then run on a quarter of the pixels, and BatchNorm normalises
                the values the next stage actually sees. 1.3-1.4x faster training on a CPU. False keeps the
                notebook's conv-ReLU-pool order (and loads checkpoints saved before this option existed).
        """
        super().__init__()
        layers, c_in, size = [], 1, 28
        for stage, c_out in enumerate(channels):
            for i in range(convs_per_stage):
                stride = stem_stride if stage == i == 0 else 1
                pool = i == convs_per_stage - 1 and (stage > 0 or stem_stride == 1)  # the stage's last conv
                layers += conv_bn_relu(c_in, c_out, stride, pool, pool_first)
                c_in = c_out
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


if __name__ == "__main__":  # python -m src.model: the size of each recipe in configs/
    from pathlib import Path

    import yaml

    configs = Path(__file__).resolve().parent.parent / "configs"
    default = yaml.safe_load((configs / "default.yaml").read_text())["model"]
    print(f"{'config':<10} {'channels':<22} {'convs/stage':>11} {'stem':>4} {'hidden':>6} {'parameters':>11} {'MACs/image':>11}")
    for path in sorted(configs.glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        if config.get("task", "digits") != "digits":
            continue  # another network: configs/lines.yaml's is src/line_model.py's (`python -m src.line_model`)
        m = {**default, **(config.get("model") or {})}
        params, macs = complexity(Net(tuple(m["channels"]), m["convs_per_stage"], m["hidden"], m["dropout"], m["stem_stride"],
                                      m["pool_first"]))
        print(f"{path.stem:<10} {str(tuple(m['channels'])):<22} {m['convs_per_stage']:>11} {m['stem_stride']:>4} {m['hidden']:>6} "
              f"{params:>11,} {macs / 1e6:>10.2f}M")
