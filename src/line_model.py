"""The line reader's network, a plain `nn.Module` with no Lightning in it (exported to ONNX beside the digit net).

It reads a whole line of handwritten digits at once, so it needs no cut between touching digits: a stack of
3x3 convolutions (BatchNorm, ReLU) pools the line, 32 px tall, to 2 rows of one column per 4 px, then 1-D
convolutions along the line (one dilated, so each column sees about two digits' width) give each column 11
scores: the ten digits and a blank. Trained with the CTC loss (src/line_module.py), a line is read by taking
each column's best class, merging repeats and dropping blanks (`greedy_decode`).

Input: (B, 1, 32, W) ink in [0, 1] on 0, W a multiple of 4 (src/line_data.py: `to_line`); output: (B, 11, W / 4)
logits, class 10 the blank.

    python -m src.line_model          # its size
"""

from __future__ import annotations

import torch
from torch import nn

HEIGHT, STRIDE, BLANK = 32, 4, 10  # input height (px), input px per output column, the blank class


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class LineNet(nn.Module):
    def __init__(self, channels: tuple[int, int, int, int] = (24, 48, 64, 96), hidden: int = 128):
        """
        Args:
            channels: the widths of the 2-D stages: 32 x W -> 16 x W/2 -> 8 x W/4 -> 4 x W/4 (two convs) -> 2 x W/4.
            hidden: the width of the two 1-D convolutions along the line.
        """
        super().__init__()
        c1, c2, c3, c4 = channels
        self.features = nn.Sequential(
            conv_bn_relu(1, c1), nn.MaxPool2d(2),
            conv_bn_relu(c1, c2), nn.MaxPool2d(2),
            conv_bn_relu(c2, c3), conv_bn_relu(c3, c3), nn.MaxPool2d((2, 1)),  # height only from here: a column
            conv_bn_relu(c3, c4), nn.MaxPool2d((2, 1)),                        # stays 4 px of the line
        )
        self.columns = nn.Sequential(  # over (B, 2 * c4, W/4): each column with its neighbours
            nn.Conv1d(2 * c4, hidden, 3, padding=1), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 3, padding=2, dilation=2), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Conv1d(hidden, BLANK + 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B, c4, 2, W/4)
        return self.columns(f.flatten(1, 2))  # (B, 11, W/4)


def greedy_decode(logits: torch.Tensor, lengths: torch.Tensor | None = None) -> list[str]:
    """(B, 11, T) scores -> each line's digits: the best class per column, repeats merged, blanks dropped.
    `lengths` (B,): how many columns of each line are its own (the rest is padding)."""
    best = logits.argmax(1).cpu()
    out = []
    for k, row in enumerate(best.tolist()):
        row = row[: int(lengths[k])] if lengths is not None else row
        out.append("".join(str(c) for i, c in enumerate(row) if c != BLANK and (i == 0 or c != row[i - 1])))
    return out


if __name__ == "__main__":
    net = LineNet()
    print(f"LineNet: {sum(p.numel() for p in net.parameters()):,} parameters; "
          f"(1, 1, {HEIGHT}, 160) -> {tuple(net.eval()(torch.zeros(1, 1, HEIGHT, 160)).shape)}")
