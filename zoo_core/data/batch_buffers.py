"""Shared-memory batch buffers that DataLoader workers reuse once the main process has let go of them.

A worker stacks each batch into shared memory, which the main process maps rather than copies (PyTorch's
own collation does the same). A fresh buffer costs the kernel its pages every batch: allocated and zeroed,
then faulted in at the first write, 38 MB for a 64 × 3 × 224 × 224 float32 batch. Reused, it costs
nothing of the kind (the figures: benchmarks/results/batch-buffers-cpu-amx.md). PyTorch has no way to hand a
batch's memory back to the worker that made it, so this module adds one:

- A table in shared memory, made by the main process before the workers start, has a row per (worker,
  slot). A row holds a token while the main process may hold that slot's buffer, 0 once it is free.
- A worker (``BatchBuffers.empty``) takes a slot whose row is 0 (its buffer reused when large enough, else
  made anew), draws a fresh random token, writes it in the buffer's last 8 bytes and in the row, and
  sends the batch. With no slot free it makes a buffer outside the slots, token 0, as PyTorch would.
- The main process (``BatchBuffers.received``, for every batch it takes from the DataLoader) reads the
  token of the batch's buffer and, when a row holds it, keeps a weak reference to the buffer; once the
  buffer has died (every tensor on it freed, autograd's included) it sets the row back to 0.

A token is new for every batch sent, so a row is only freed for the very batch it was taken for, whatever
workers restart or memory is reused. Two more rules keep rows from being lost or shared: persistent
workers' rows whose batches were never taken (PyTorch drops what was made ahead for a pass left early)
are freed before the next pass (``forget_unreceived``), and workers started anew for each pass get a
table of their own (``renewed``). Only with PyTorch's ``file_descriptor`` sharing (Linux's default) and
without pinned memory (the pinning thread would take the batches, not the loader): otherwise ``slots`` is
0 and every batch gets a fresh buffer. The price: each worker keeps its slots' buffers (3 batches, about
what it has in flight while the loader runs) for as long as it lives, idle or not, where PyTorch frees
each once the main process is done with it.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef

# per worker: the batches it has in flight (DataLoader's prefetch_factor, 2, stacked or waiting) and the one
# the main process holds; when all are held a batch gets a fresh buffer
SLOTS = 3
_TAIL = 64  # bytes after the batch's own: its token in the last 8, the rest keeps the size aligned


class BatchBuffers:
    """The slots of ``workers`` DataLoader workers (see the module docstring)."""

    def __init__(self, workers: int, slots: int = SLOTS) -> None:
        self.workers = workers
        self.slots = slots if workers > 0 and _shares_by_fd() else 0
        self.table = torch.zeros(workers * self.slots, dtype=torch.int64)
        if self.slots:
            self.table.share_memory_()
        self._mine: dict[int, torch.UntypedStorage] = {}  # in a worker: row → its buffer
        self._held: list[tuple[StorageWeakRef, int, int]] = []  # in the main process: (buffer, row, token)

    def __getstate__(self) -> dict[str, Any]:  # a spawned worker starts with no buffers and holds none
        return {**self.__dict__, "_mine": {}, "_held": []}

    def empty(self, numel: int, dtype: torch.dtype, worker: int) -> torch.Tensor:
        """A flat tensor of ``numel`` elements in shared memory for worker ``worker``'s next batch: a free
        slot's buffer, marked taken, or a fresh buffer when none is free."""
        nbytes = -(-numel * dtype.itemsize // _TAIL) * _TAIL + _TAIL
        table = self.table.numpy()
        for row in range(worker * self.slots, (worker + 1) * self.slots):
            if table[row] != 0:
                continue
            storage = self._mine.get(row)
            if storage is None or storage.nbytes() < nbytes:
                storage = self._mine[row] = _shared(nbytes)
            token = int.from_bytes(os.urandom(8), "little") >> 1 | 1  # positive, never 0
            _token_of(storage).fill_(token)
            table[row] = token
            return torch.empty(0, dtype=dtype).set_(storage, 0, (numel,))
        storage = _shared(nbytes)  # every slot in use: a buffer of this batch alone, as PyTorch's
        _token_of(storage).zero_()
        return torch.empty(0, dtype=dtype).set_(storage, 0, (numel,))

    def received(self, batch: torch.Tensor) -> None:
        """In the main process, for each batch taken from the workers: rows whose buffers have died are
        freed, and ``batch``'s own buffer, when it is a slot's, is watched."""
        if not self.slots:
            return
        table = self._release()
        storage = batch.untyped_storage()
        if batch.device.type != "cpu" or not storage.is_shared() or storage.nbytes() < _TAIL:
            return
        token = int(_token_of(storage))
        if token:
            rows = (table == token).nonzero()[0]
            if len(rows):
                self._held.append((StorageWeakRef(storage), int(rows[0]), token))

    def forget_unreceived(self) -> None:
        """In the main process, before persistent workers start a new pass: the batches they made for the
        pass before and that were never taken from it (an iteration left early: PyTorch drops them) free
        their rows. Every row but those of batches still alive here is set to 0."""
        if not self.slots:
            return
        table = self._release()
        kept = {row: token for _, row, token in self._held}
        for row in range(len(table)):
            if kept.get(row) != table[row]:
                table[row] = 0

    def _release(self) -> Any:
        """Rows whose watched buffers have died set to 0; the table, as numpy."""
        table = self.table.numpy()
        alive = []
        for ref, row, token in self._held:
            if not ref.expired():
                alive.append((ref, row, token))
            elif table[row] == token:
                table[row] = 0
        self._held = alive
        return table

    def renewed(self) -> BatchBuffers:
        """A table of the same size for a new set of workers (a DataLoader without persistent workers
        starts its own each pass): two sets of workers never share rows."""
        return BatchBuffers(self.workers, self.slots) if self.slots else self


def _shares_by_fd() -> bool:
    return torch.multiprocessing.get_sharing_strategy() == "file_descriptor"


def _shared(nbytes: int) -> torch.UntypedStorage:
    """A new shared-memory buffer of ``nbytes`` (the storage call PyTorch's default collation makes)."""
    return torch.UntypedStorage._new_shared(nbytes, device="cpu")


def _token_of(storage: torch.UntypedStorage) -> torch.Tensor:
    """The int64 in a buffer's last 8 bytes."""
    return torch.empty(0, dtype=torch.int64).set_(storage, storage.nbytes() // 8 - 1, ())
