"""Persistent scratch memory, so a training step allocates nothing parameter-sized.

On the CPU most of an elementwise pass's cost is allocating (and page-faulting) a fresh
parameter-sized temporary, not the arithmetic (``bench/regularizers.py`` shows it): every
method that needs a temporary writes it into memory kept from one step to the next.
"""

from __future__ import annotations

import torch


class ScratchBuffers:
    """One buffer per parameter, allocated on first use and re-made if the parameter moved.

    Several independent buffers per parameter are available as ``slot`` 0, 1, ...
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[int, int], torch.Tensor] = {}

    def like(self, params: list[torch.Tensor], *, slot: int = 0) -> list[torch.Tensor]:
        out = []
        for p in params:
            key = (id(p), slot)
            buf = self._buffers.get(key)
            if (
                buf is None
                or buf.device != p.device
                or buf.dtype != p.dtype
                or buf.shape != p.shape
            ):
                buf = torch.empty_like(p, memory_format=torch.preserve_format)
                self._buffers[key] = buf
            out.append(buf)
        return out

    def clear(self) -> None:
        self._buffers.clear()


class SharedScratch:
    """One flat buffer per (device, dtype), as large as the largest parameter seen.

    For work done one parameter at a time (gradient hooks): memory is one parameter's, not a
    copy of the model. Hooks of one backward pass run one after another on the autograd
    thread of their device, so they never use it concurrently.
    """

    def __init__(self) -> None:
        self._flat: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def like(self, p: torch.Tensor) -> torch.Tensor:
        key = (p.device, p.dtype)
        flat = self._flat.get(key)
        if flat is None or flat.numel() < p.numel():
            flat = torch.empty(p.numel(), device=p.device, dtype=p.dtype)
            self._flat[key] = flat
        return flat[: p.numel()].view(p.shape)

    def clear(self) -> None:
        self._flat.clear()
