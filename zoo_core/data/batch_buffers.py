"""Shared-memory batch buffers that DataLoader workers reuse once the main process has let go of them.

A worker stacks each batch into shared memory, which the main process maps rather than copies (PyTorch's
own collation does the same). A fresh buffer costs the kernel its pages every batch: allocated and zeroed,
then faulted in at the first write, 38 MB for a 64 × 3 × 224 × 224 float32 batch. Reused, it costs
nothing of the kind (the figures: benchmarks/results/batch-buffers-cpu-amx.md). PyTorch has no way to hand a
batch's memory back to the worker that made it, so this module adds one:

- A table in shared memory, made by the main process before the workers start, has a row per (worker,
  slot). A row holds a token while the main process may hold that slot's buffer, 0 once it is free.
- A worker (``BatchBuffers.empty``) takes a slot whose row is 0 (its buffer reused when large enough, else
  made anew), writes the batch's token in the buffer's last 8 bytes and in the row, and sends the batch.
  A token is the batch's number in its worker, the worker, random bits, and an odd lowest bit. With no
  slot free it makes a buffer outside the slots (the same token, even) as PyTorch would.
- The main process (``BatchBuffers.received``, for every batch it takes from the DataLoader) reads the
  token of the batch's buffer and, when a row holds it, keeps a weak reference to the buffer; once the
  buffer has died (every tensor on it freed, autograd's included) it sets the row back to 0.

Tokens are never reused, so a row is only freed for the very batch it was taken for, whatever workers
restart or memory is reused. A worker's batches reach the loader in the order it made them, so when one
arrives, the rows its worker took for earlier batches that never arrived are freed too (PyTorch drops
the batches made ahead for a pass left early). Workers started anew for each pass get a table of their
own (``renewed``), so two sets never share rows.

Only with PyTorch's ``file_descriptor`` sharing (Linux's default) and without pinned memory (the pinning
thread would take the batches, not the loader): otherwise ``slots`` is 0 and every batch gets a fresh
buffer. The price: each worker keeps the buffers of the slots it has used (at most 4 batches, about what
it has in flight while the loader runs) for as long as it lives, idle or not, where PyTorch frees each
once the main process is done with it.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef

# per worker: its batches in flight (DataLoader's prefetch_factor, 2), the one the main process holds, and
# the one before it, freed when the next of this worker's arrives; made as needed, a fresh buffer past them
SLOTS = 4
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
        self._sent = 0  # in a worker: the batches it has stacked
        self._held: list[tuple[StorageWeakRef, int, int]] = []  # in the main process: (buffer, row, token)

    def __getstate__(self) -> dict[str, Any]:  # a spawned worker starts with no buffers and holds none
        return {**self.__dict__, "_mine": {}, "_held": [], "_sent": 0}

    def empty(self, numel: int, dtype: torch.dtype, worker: int) -> torch.Tensor:
        """A flat tensor of ``numel`` elements in shared memory for worker ``worker``'s next batch: a free
        slot's buffer, marked taken, or a fresh buffer when none is free."""
        nbytes = -(-numel * dtype.itemsize // _TAIL) * _TAIL + _TAIL
        self._sent += 1
        table = self.table.numpy()
        free = [row for row in range(worker * self.slots, (worker + 1) * self.slots) if table[row] == 0]
        token = _token(self._sent, worker, slot=bool(free))
        if free:
            storage = self._mine.get(free[0])
            if storage is None or storage.nbytes() < nbytes:
                storage = self._mine[free[0]] = _shared(nbytes)
            table[free[0]] = token
        else:  # every slot in use: a buffer of this batch alone, as PyTorch's
            storage = _shared(nbytes)
        _token_of(storage).fill_(token)
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
        number, worker = token >> 32, token >> 16 & 0xFFFF
        if not number or worker >= self.workers:
            return
        rows = (table == token).nonzero()[0] if token & 1 else ()
        if len(rows):
            self._held.append((StorageWeakRef(storage), int(rows[0]), token))
        self._free_older(table, worker, number)

    def _free_older(self, table: Any, worker: int, number: int) -> None:
        """Rows of ``worker`` taken for batches it made before its batch ``number`` and never received
        here are free: a worker's batches reach the loader in the order it made them, so those were
        dropped (the batches made ahead for a pass left early)."""
        held = {r for _, r, _ in self._held}
        for r in range(worker * self.slots, (worker + 1) * self.slots):
            if r not in held and 0 < table[r] >> 32 < number:
                table[r] = 0

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


def _token(number: int, worker: int, slot: bool) -> int:
    """A batch's token: its number in its worker (from 1), the worker, 15 random bits, and 1 in the lowest
    bit for a slot's buffer (0 for a fresh one). Positive, never 0."""
    noise = int.from_bytes(os.urandom(2), "little") & 0xFFFE
    return number << 32 | (worker & 0xFFFF) << 16 | noise | int(slot)


def _shares_by_fd() -> bool:
    return torch.multiprocessing.get_sharing_strategy() == "file_descriptor"


def _shared(nbytes: int) -> torch.UntypedStorage:
    """A new shared-memory buffer of ``nbytes`` (the storage call PyTorch's default collation makes)."""
    return torch.UntypedStorage._new_shared(nbytes, device="cpu")


def _token_of(storage: torch.UntypedStorage) -> torch.Tensor:
    """The int64 in a buffer's last 8 bytes."""
    return torch.empty(0, dtype=torch.int64).set_(storage, storage.nbytes() // 8 - 1, ())
