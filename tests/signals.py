"""A callback for tests that interrupts a training run from inside, at a known step (no sleeping, no luck).

    python -m src.train fit ... --trainer.callbacks+=tests.signals.SignalAt \
        --trainer.callbacks.step 17 --trainer.callbacks.signal SIGKILL
"""

import os
import signal as signals

from lightning.pytorch import Callback


class SignalAt(Callback):
    def __init__(self, step: int, signal: str = "SIGINT"):
        """
        Args:
            step: send the signal right after this optimizer step (global_step), before its checkpoints, in a
                fresh run only: the resumed run carries this callback in its saved config, and must finish.
            signal: SIGINT (Ctrl-C) or SIGKILL (kill -9), sent by the process to itself.
        """
        self.step, self.signal = step, getattr(signals, signal)

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step and trainer.ckpt_path is None:
            os.kill(os.getpid(), self.signal)
