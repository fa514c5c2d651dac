"""The LightningModule: owns the loss, the metrics, the optimiser, the weight average and the test figures.

The network itself is `src.model.Net`; this file only decides how it is trained and evaluated.
"""

from __future__ import annotations

import copy
from typing import Literal

import lightning as L
import matplotlib

matplotlib.use("Agg")  # figures are rendered to TensorBoard, never to a screen
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, restricted_number_type
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from src.checkpoints import primitives
from src.data import MEAN, STD
from src.model import Net
from src.pieces import NOT_DIGIT

N_MISCLASSIFIED = 48  # digits shown in the test/misclassified grid


# [0, 1): a probability or decay that must stay below 1.
UnitFraction = restricted_number_type("UnitFraction", float, [(">=", 0), ("<", 1)])


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; raised before any checkpoint could store the broken weights."""


class MNISTClassifier(L.LightningModule):
    def __init__(
        self,
        channels: tuple[PositiveInt, ...] = (16, 32, 64, 128),
        convs_per_stage: PositiveInt = 1,
        hidden: int = 0,
        dropout: UnitFraction = 0.25,
        stem_stride: Literal[1, 2] = 1,
        pool_first: bool = False,
        lr: PositiveFloat = 0.2,
        weight_decay: NonNegativeFloat = 2.5e-4,
        warmup_fraction: ClosedUnitInterval = 0.25,
        label_smoothing: UnitFraction = 0.1,
        ema_decay: UnitFraction = 0.998,
        ema_warmup_steps: NonNegativeInt = 100,
        channels_last: bool = True,
    ):
        """
        Args:
            channels, convs_per_stage, hidden, dropout, stem_stride, pool_first: the network's shape, see `src.model.Net`.
            lr: peak learning rate of the one-cycle schedule, for the per-device batch size.
            weight_decay: L2 penalty on conv and linear weights (not on BatchNorm or biases).
            warmup_fraction: share of the steps spent ramping the learning rate up to `lr`.
            label_smoothing: cross-entropy target smoothing; 0 for plain cross-entropy.
            ema_decay: decay of an exponential moving average of the weights, used for validation,
                test, predict and export; 0 turns it off. 0.999 averages over about the last 1,000 steps.
            ema_warmup_steps: for this many optimizer steps the average simply copies the weights (the
                random start is not worth remembering); from the next step on, `ema_decay` applies.
            channels_last: NHWC memory layout, faster for convolutions on CPUs and tensor cores.
        """
        super().__init__()
        # Primitives only, so checkpoints load with torch.load(weights_only=True). The logger gets
        # them once training is over, together with the final metrics (see src.train).
        self.save_hyperparameters(logger=False)
        self.hparams.update(primitives(self.hparams))
        self.net = Net(tuple(channels), convs_per_stage, hidden, dropout, stem_stride, pool_first)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        # The averaged copy is trained by no optimiser: it follows `net` after every step.
        self.ema = copy.deepcopy(self.net).requires_grad_(False) if ema_decay > 0 else None
        self.example_input_array = torch.zeros(2, 1, 28, 28)  # model summary and graph tracing
        self.train_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.test_confusion = MulticlassConfusionMatrix(num_classes=10)
        self._wrong: list[tuple[torch.Tensor, torch.Tensor]] = []  # misclassified test digits, per batch

    @property
    def eval_net(self) -> Net:
        """The weights to evaluate and ship: the moving average when there is one."""
        return self.ema if self.ema is not None else self.net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) if self.training else self.eval_net(x)  # (B, 10) logits

    # --- training -----------------------------------------------------------------------------
    # Per-step logging is kept to the loss: each self.log call costs Lightning ~0.7 ms of Python, a
    # few percent of a CPU step. Accuracy is logged per epoch and the learning rate straight to the
    # logger every log_every_n_steps.
    def training_step(self, batch, batch_idx):
        x, y = batch  # (B, 1, 28, 28) normalised and augmented, (B,); label NOT_DIGIT: no single digit
        logits = self.net(x)
        loss = self.training_loss(logits, y)
        if not torch.isfinite(loss):  # stop before this step's update, and before any checkpoint of it
            raise NonFiniteLossError(f"the training loss became {loss.item()} at epoch {self.current_epoch}, "
                                     f"step {self.global_step}")
        digit = y != NOT_DIGIT
        self.train_acc.update(logits.detach()[digit], y[digit])  # accuracy over the digits alone
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def training_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with smoothed targets; a NOT_DIGIT row's target is 1/10 for every class (the data
        module's not_digits: src/pieces.py)."""
        smoothing = self.hparams.label_smoothing
        if not (y == NOT_DIGIT).any():
            return F.cross_entropy(logits, y, label_smoothing=smoothing)
        loss = F.cross_entropy(logits, y.clamp(min=0), label_smoothing=smoothing, reduction="none")
        return torch.where(y != NOT_DIGIT, loss, -logits.float().log_softmax(1).mean(1)).mean()

    def on_train_epoch_end(self) -> None:
        self.log("train/acc", self.train_acc.compute())  # over all ranks' batches of the epoch
        self.train_acc.reset()

    def on_train_start(self) -> None:
        # The averaged and the live weights as two lists of tensors, in step, built once (after the
        # module has reached its device) so the per-step update is a single fused lerp.
        if self.ema is not None:
            ema, cur = self.ema.state_dict(keep_vars=True), self.net.state_dict(keep_vars=True)
            floats = [k for k, v in ema.items() if v.is_floating_point()]
            self._ema_floats = ([ema[k].data for k in floats], [cur[k].data for k in floats])
            self._ema_counts = [(ema[k], cur[k]) for k in ema.keys() - set(floats)]  # BatchNorm's num_batches_tracked

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """Move the average towards the live weights after optimizer step `step` (1 after the first batch).

        During the warm-up (step <= ema_warmup_steps) the average copies the weights; after it, the
        configured decay runs as is: ema = decay * ema + (1 - decay) * weights.
        """
        if self.ema is None:
            return
        if not hasattr(self, "_ema_floats"):
            self.on_train_start()
        warm = step > self.hparams.ema_warmup_steps
        torch._foreach_lerp_(*self._ema_floats, 1 - self.hparams.ema_decay if warm else 1.0)
        for ema, cur in self._ema_counts:
            ema.copy_(cur)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        # The average moves with the weights, inside the step: every hook after it, and so every checkpoint
        # (LastCheckpoint saves in on_train_batch_end, which Lightning runs for callbacks before this module's),
        # sees weights and average of the same step. global_step counts the steps before this one.
        self.update_ema(self.global_step + 1)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.logger is not None and self.global_step % self.trainer.log_every_n_steps == 0:
            self.logger.log_metrics({"train/lr": self.lr_schedulers().get_last_lr()[0]}, step=self.global_step)

    def configure_optimizers(self):
        optimizer, scheduler = self.optimizer_and_schedule(self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def optimizer_and_schedule(self, total_steps: int):
        # SGD with Nesterov momentum and a one-cycle schedule: the rate rises from lr/25 to lr over
        # the warm-up, then decays to ~0 along a cosine, while momentum moves the other way (0.95 ->
        # 0.85 -> 0.95). With BatchNorm and a large batch this reaches a given accuracy in the fewest
        # epochs, and the high peak rate regularises. Stepped per batch, the schedule adapts to
        # max_epochs, the batch size and the number of devices.
        decay = [p for p in self.net.parameters() if p.ndim > 1]
        no_decay = [p for p in self.net.parameters() if p.ndim <= 1]
        optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": self.hparams.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.hparams.lr,
            momentum=0.9,  # replaced at once by the schedule's momentum cycle
            nesterov=True,
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.hparams.lr,
            total_steps=total_steps,
            pct_start=self.hparams.warmup_fraction,
        )
        return optimizer, scheduler

    # --- evaluation -----------------------------------------------------------------------------
    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.eval_net(x)
        self.val_acc(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        logits = self.eval_net(x)
        self.test_acc(logits, y)
        self.test_confusion(logits, y)
        self.log("test/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log("test/acc", self.test_acc)
        prob, pred = logits.float().softmax(1).max(1)
        wrong = (pred != y).nonzero().squeeze(1)
        if sum(len(w) for w, _ in self._wrong) < N_MISCLASSIFIED:
            digits = x[wrong, 0].float() * STD + MEAN  # (k, 28, 28) back in [0, 1]
            self._wrong.append((digits.cpu(), torch.stack([y[wrong], pred[wrong], prob[wrong]], 1).float().cpu()))

    def on_test_epoch_end(self) -> None:
        confusion = self.test_confusion.compute().cpu()  # summed over DDP ranks by torchmetrics
        self.test_confusion.reset()
        digits, labels = self._gather_wrong()
        tb = getattr(self.logger, "experiment", None)
        if self.trainer.is_global_zero and hasattr(tb, "add_figure"):
            tb.add_figure("test/confusion_matrix", confusion_figure(confusion), self.global_step)
            tb.add_figure("test/misclassified", misclassified_figure(digits, labels), self.global_step)

    def _gather_wrong(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to N_MISCLASSIFIED wrong test digits (k, 28, 28) and (true, pred, prob) rows (k, 3), from all ranks."""
        digits = torch.cat([d for d, _ in self._wrong] or [torch.zeros(0, 28, 28)])[:N_MISCLASSIFIED]
        labels = torch.cat([m for _, m in self._wrong] or [torch.zeros(0, 3)])[:N_MISCLASSIFIED]
        self._wrong = []
        if self.trainer.world_size == 1:
            return digits, labels
        # all_gather needs equal shapes: pad to N_MISCLASSIFIED rows and mark the real ones.
        n = len(labels)
        pad = lambda t: torch.cat([t, t.new_zeros(N_MISCLASSIFIED - n, *t.shape[1:])]).to(self.device)
        valid = torch.arange(N_MISCLASSIFIED, device=self.device) < n
        d, m, v = (self.all_gather(t).flatten(0, 1).cpu() for t in (pad(digits), pad(labels), valid))
        return d[v][:N_MISCLASSIFIED], m[v][:N_MISCLASSIFIED]

    def predict_step(self, batch, batch_idx):
        x, _ = batch
        prob, digit = self.eval_net(x).float().softmax(1).max(1)
        return {"digit": digit, "probability": prob}


def confusion_figure(confusion: torch.Tensor) -> plt.Figure:
    """A 10x10 count matrix, true digit down, prediction across, with the counts written in."""
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(confusion.log1p(), cmap="Blues")
    for t in range(10):
        for p in range(10):
            n = int(confusion[t, p])
            if n:
                ax.text(p, t, n, ha="center", va="center", fontsize=8, color="white" if t == p else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true")
    ax.set_title(f"test set: {int(confusion.trace())} of {int(confusion.sum())} correct")
    fig.tight_layout()
    return fig


def misclassified_figure(digits: torch.Tensor, labels: torch.Tensor) -> plt.Figure:
    """Digits (k, 28, 28) in [0, 1], titled true→predicted (probability of the prediction) from labels (k, 3)."""
    cols = 8
    rows = max(1, -(-len(labels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.45), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, digit, (true, pred, prob) in zip(axes.flat, digits, labels.tolist()):
        ax.imshow(digit, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{int(true)}→{int(pred)} ({prob:.0%})", fontsize=8)
    fig.suptitle(f"misclassified test digits, true→predicted: the first {len(labels)}", fontsize=9)
    fig.tight_layout()
    return fig
