"""A callback for tests that interrupts a training run from inside, at a known step (no sleeping, no luck).

    python -m src.train fit ... --trainer.callbacks+=tests.signals.SignalAt \
        --trainer.callbacks.step 17 --trainer.callbacks.signal SIGKILL
"""

import os
import signal as signals

from lightning.pytorch import Callback


class SignalAt(Callback):
    def __init__(self, step: int, signal: str = "SIGINT", during: bool = False):
        """
        Args:
            step: send the signal right after this optimizer step (global_step), before its checkpoints, in a
                fresh run only: the resumed run carries this callback in its saved config, and must finish.
            signal: SIGINT (Ctrl-C) or SIGKILL (kill -9), sent by the process to itself.
            during: send it during that step instead, after its backward, before the optimizer updates the weights.
        """
        self.step, self.signal, self.during = step, getattr(signals, signal), during

    def on_before_optimizer_step(self, trainer, *args) -> None:
        if self.during and trainer.global_step == self.step - 1 and trainer.ckpt_path is None:
            os.kill(os.getpid(), self.signal)

    def on_train_batch_end(self, trainer, *args) -> None:
        if not self.during and trainer.global_step == self.step and trainer.ckpt_path is None:
            os.kill(os.getpid(), self.signal)
