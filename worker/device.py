"""The device a trial trains on (``auto``: the first CUDA device if there is one) and timing
its steps there without slowing them."""

from __future__ import annotations

import time
from typing import Any

import torch


class StepTimer:
    """Times training steps without slowing them: on CUDA with events read once an epoch
    (a synchronize per step would serialize the host with the GPU), else the host clock."""

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._pending: list[tuple[Any, Any]] = []
        self._started = 0.0
        self.times_s: list[float] = []

    def start(self) -> None:
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            event.record()
            self._pending.append((event, None))
        else:
            self._started = time.perf_counter()

    def stop(self) -> None:
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            event.record()
            self._pending[-1] = (self._pending[-1][0], event)
        else:
            self.times_s.append(time.perf_counter() - self._started)

    def discard(self) -> None:
        """Forget the step started last (there was none to take)."""
        if self._cuda and self._pending:
            self._pending.pop()

    def collect(self) -> None:
        """Turn the epoch's recorded CUDA events into times (one synchronize)."""
        if self._pending:
            self._pending[-1][1].synchronize()
            self.times_s += [start.elapsed_time(end) / 1000 for start, end in self._pending]
            self._pending = []


def resolve_device(device: str) -> torch.device:
    """``auto`` → the first CUDA device if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but no CUDA device is available")
    return resolved
