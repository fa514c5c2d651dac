"""The line reader's LightningModule: the CTC loss, the optimiser and the figures of whole lines read.

The network is `src.line_model.LineNet`; the lines come from `src.line_data.LinesDataModule`. Train it with
`python -m src.train fit --config configs/lines.yaml` (the task `lines`).

A line is right when its digits are read exactly (`acc`); `cer` is the digits' error rate: the edit distance
between the digits read and the truth over the truth's digits.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, PositiveFloat, PositiveInt
from torchmetrics import MeanMetric
from torchmetrics.text import CharErrorRate

from src.checkpoints import primitives
from src.line_model import BLANK, HEIGHT, LineNet, greedy_decode
from src.module import NonFiniteLossError


class LineReader(L.LightningModule):
    def __init__(
        self,
        channels: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (24, 48, 64, 96),
        hidden: PositiveInt = 128,
        lr: PositiveFloat = 3e-3,
        weight_decay: NonNegativeFloat = 1e-4,
        warmup_fraction: ClosedUnitInterval = 0.03,
    ):
        """
        Args:
            channels, hidden: the network's widths, see `src.line_model.LineNet`.
            lr: AdamW's peak learning rate, reached linearly over the warm-up, then decayed to 0 along a cosine.
            weight_decay: AdamW's decoupled weight decay.
            warmup_fraction: the share of the steps spent ramping the learning rate up to `lr`.
        """
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.hparams.update(primitives(self.hparams))
        self.net = LineNet(tuple(channels), hidden)
        self.example_input_array = torch.zeros(2, 1, HEIGHT, 96)  # model summary: two lines of four digits
        self.metrics = torch.nn.ModuleDict({f"{stage}_{name}": metric() for stage in ("val", "test")
                                            for name, metric in (("acc", MeanMetric), ("cer", CharErrorRate))})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 11, W / 4) logits

    def training_step(self, batch, batch_idx):
        x, targets, target_lengths, lengths, _, _ = batch
        log_probs = self.net(x).float().log_softmax(1).permute(2, 0, 1)  # (T, B, 11), as ctc_loss takes it
        # zero_infinity: a line too narrow for its digits (two touching 1s in 2 columns need 3) adds no loss.
        loss = F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=BLANK, zero_infinity=True)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"the training loss became {loss.item()} at epoch {self.current_epoch}, "
                                     f"step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.logger is not None and self.global_step % self.trainer.log_every_n_steps == 0:
            self.logger.log_metrics({"train/lr": self.lr_schedulers().get_last_lr()[0]}, step=self.global_step)

    def configure_optimizers(self):
        total, warmup = self.trainer.estimated_stepping_batches, self.hparams.warmup_fraction
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

        def rate(step: int) -> float:  # the factor of lr after `step` steps
            done = step / max(1, total)
            if done < warmup:
                return (step + 1) / max(1, warmup * total)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (done - warmup) / max(1e-9, 1 - warmup))))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _evaluate(self, batch, stage: str) -> None:
        x, targets, target_lengths, lengths, texts, _ = batch
        logits = self.net(x)
        read = greedy_decode(logits, lengths)
        right = torch.tensor([r == t for r, t in zip(read, texts)], dtype=torch.float32, device=self.device)
        self.metrics[f"{stage}_acc"].update(right)
        self.metrics[f"{stage}_cer"].update(read, list(texts))
        log_probs = logits.float().log_softmax(1).permute(2, 0, 1)
        loss = F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=BLANK, zero_infinity=True)
        self.log(f"{stage}/loss", loss, batch_size=len(texts), sync_dist=True)
        self.log(f"{stage}/acc", self.metrics[f"{stage}_acc"], batch_size=len(texts), prog_bar=stage == "val")
        self.log(f"{stage}/cer", self.metrics[f"{stage}_cer"], batch_size=len(texts))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def predict_step(self, batch, batch_idx):
        x, _, _, lengths, texts, index = batch
        probs = self.net(x).float().softmax(1)  # (B, 11, T)
        best = probs.max(1).values  # each column's best class's probability
        # A line's confidence: its least sure column (a blank read as a digit or the other way is a miss).
        sure = torch.stack([best[k, : int(n)].min() for k, n in enumerate(lengths)])
        return {"index": index, "number": greedy_decode(probs, lengths), "probability": sure, "truth": list(texts)}
