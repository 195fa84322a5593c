"""Graceful stop on SIGINT / SIGTERM: finish the current E- or M-step, checkpoint, exit 0.

A cluster scheduler or a user stopping a run sends SIGTERM (or Ctrl-C = SIGINT). Killing the
process there would lose up to a whole iteration; instead :class:`GracefulStop` turns the first
signal into a flag that the training loop reads at its safe points (the end of an E-step and the end
of an M-step), where it writes a checkpoint and returns. A second SIGINT while stopping raises
``KeyboardInterrupt`` at once (the user insists; the latest complete checkpoint is then the one to
resume from). Handlers can only be installed in the main thread; elsewhere the context manager is
inert and ``requested`` stays False.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """``with GracefulStop() as stop: ... if stop.requested: <checkpoint and return>``."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = self.signal_name or name
        print(f"empg: {name} received; stopping after the current E- or M-step with a checkpoint "
              "(Ctrl-C again to abort at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()


__all__ = ["GracefulStop"]
