"""Workers reuse their shared-memory batch buffers once the main process has let go of them, and never
while any tensor on one lives: batches held whole, held as views, or dropped at once are all the batches
the main process makes without workers."""

from __future__ import annotations

import time

import pytest
import torch
from test_loader import TensorDataset

from zoo_core.data import batch_buffers
from zoo_core.data.batch_buffers import SLOTS, BatchBuffers
from zoo_core.data.loader import StreamLoader

N, C, H, W = 240, 3, 8, 8
WORKERS = 2


def loaders(dataset: type = TensorDataset, **extra) -> tuple[StreamLoader, StreamLoader]:
    """The same training loader with two workers (which normalize the batches) and without workers."""
    images = torch.randint(
        0, 256, (N, C, H, W), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    options = dict(batch_size=4, device="cpu", mean=(0.1, 0.2, 0.3), std=(0.3, 0.2, 0.25), train=True)
    options.update(flip=True, seed=5, channels_last=True, **extra)
    workers = StreamLoader(dataset(images), num_workers=WORKERS, **options)
    assert workers.normalize_in_workers
    return workers, StreamLoader(dataset(images), num_workers=0, **options)


def token(x: torch.Tensor) -> int:
    """The token in the last 8 bytes of a batch's buffer (its number in its worker, the worker, ...)."""
    return int(batch_buffers._token_of(x.untyped_storage()))


def from_slot(x: torch.Tensor) -> bool:
    """Whether a batch came in one of its worker's slots (the token's lowest bit), not a fresh buffer."""
    return bool(token(x) & 1)


def test_batches_dropped_at_once_come_from_a_few_reused_buffers_and_are_right() -> None:
    workers, here = loaders()
    expected = list(here)
    from_slots = 0
    for (x, y), (xe, ye) in zip(workers, expected, strict=True):
        assert torch.equal(y, ye) and torch.equal(x, xe)
        from_slots += from_slot(x)
    # 60 batches from the slots of two workers: each buffer was reused many times
    assert from_slots > 3 * WORKERS * SLOTS


def test_batches_held_whole_are_never_overwritten() -> None:
    workers, here = loaders()
    held = list(workers)  # every batch alive at once: no buffer is ever free to reuse
    assert len(held) == N // 4
    for (x, y), (xe, ye) in zip(held, here, strict=True):
        assert torch.equal(y, ye) and torch.equal(x, xe)
    assert sum(from_slot(x) for x, _ in held) <= WORKERS * SLOTS  # the rest had fresh buffers


def test_a_view_keeps_its_batch_buffer_from_reuse() -> None:
    """Autograd keeps a batch alive by its storage, not by the tensor the loop holds: so does a view."""
    workers, here = loaders()
    views = [x[1:3, :, 2:5] for x, _ in workers]
    assert all(torch.equal(v, x[1:3, :, 2:5]) for v, (x, _) in zip(views, here, strict=True))


def test_a_restarted_epoch_reuses_the_buffers_of_the_same_workers() -> None:
    workers, here = loaders()
    for epoch in (0, 1):
        workers.set_epoch(epoch)
        here.set_epoch(epoch)
        for (x, _), (xe, _) in zip(workers.iter_from(3), here.iter_from(3), strict=True):
            assert torch.equal(x, xe)


class Slow(TensorDataset):
    """Images that take a while to read, so that a pass is left while its workers still make batches."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        time.sleep(0.002)
        return super().__getitem__(i)


def test_passes_left_early_give_their_slots_back() -> None:
    """PyTorch drops the batches persistent workers made ahead for a pass left early, some of them made
    after the next pass began: their rows are freed as soon as a later batch of their worker arrives, so
    the slots are not lost one pass after another."""
    workers, here = loaders(dataset=Slow)
    for _ in range(4):
        batches = iter(workers)
        for _ in range(3):
            next(batches)
        del batches
    fresh = 0
    for (x, _), (xe, _) in zip(workers, here, strict=True):
        assert torch.equal(x, xe)
        fresh += not from_slot(x)
    assert fresh <= 2 * WORKERS  # at most a worker's first batches of the pass, while its rows were taken


def test_no_slots_without_workers_with_pinned_memory_or_another_sharing_strategy(monkeypatch) -> None:
    assert BatchBuffers(0).slots == 0
    assert BatchBuffers(2).slots == SLOTS and BatchBuffers(2).table.is_shared()
    monkeypatch.setattr(torch.multiprocessing, "get_sharing_strategy", lambda: "file_system")
    assert BatchBuffers(2).slots == 0


def test_a_worker_takes_a_free_slot_or_else_a_fresh_buffer() -> None:
    """The worker's side alone: slots are taken in turn, each marked with its batch's token (the batch's
    number in the worker, the worker, odd); with none free a fresh buffer is made (an even token, in no
    row); a freed slot's buffer is reused, the size rounded to whole 64 bytes."""
    buffers = BatchBuffers(2, slots=2)
    a = buffers.empty(10, torch.float32, worker=1)
    b = buffers.empty(10, torch.float32, worker=1)
    assert a.numel() == 10 and a.dtype == torch.float32
    assert buffers.table.tolist() == [0, 0, token(a), token(b)] and from_slot(a) and from_slot(b)
    assert [token(a) >> 32, token(b) >> 32, token(a) >> 16 & 0xFFFF] == [1, 2, 1]
    c = buffers.empty(10, torch.float32, worker=1)
    assert not from_slot(c) and token(c) >> 32 == 3 and c.untyped_storage().nbytes() == 128
    buffers.table[2] = 0  # the main process let go of a
    d = buffers.empty(12, torch.uint8, worker=1)
    assert d.untyped_storage().data_ptr() == a.untyped_storage().data_ptr()
    assert buffers.table[2] == token(d) and from_slot(d)
    e = buffers.empty(100, torch.float32, worker=1)  # no slot free again: fresh
    assert not from_slot(e) and token(e) not in buffers.table.tolist()


def test_sharded_batches_are_the_same_held_or_dropped(tmp_path) -> None:
    pytest.importorskip("webdataset")
    from test_datasets_wds import read, write_shards

    from zoo_core.data.shard_feed import ShardLoader

    write_shards(tmp_path / "shards", n=120)
    data = read(tmp_path / "shards")
    options = dict(batch_size=2, device="cpu", train=True, flip=True, mean=data.mean, std=data.std)
    loader = ShardLoader(data, num_workers=WORKERS, channels_last=True, seed=1, **options)
    dropped, from_slots = [], 0
    for x, y in loader:  # each batch copied, then let go
        dropped.append((x.clone(), y))
        from_slots += from_slot(x)
    assert from_slots > 3 * WORKERS * SLOTS
    held = list(loader)  # the same epoch again, every batch kept
    for (x, y), (xe, ye) in zip(held, dropped, strict=True):
        assert torch.equal(y, ye) and torch.equal(x, xe)
    assert sum(from_slot(x) for x, _ in held) <= WORKERS * SLOTS
    for _ in range(3):  # passes left early, then two passes at once: each pass's workers have own rows
        batches = iter(loader)
        next(batches)
        del batches
    assert sum(from_slot(x) for x, _ in loader) > 3 * WORKERS * SLOTS
    both = list(zip(loader, loader, strict=True))
    for ((x, y), (x2, y2)), (xe, ye) in zip(both, dropped, strict=True):
        assert torch.equal(x, xe) and torch.equal(x2, xe) and torch.equal(y, ye) and torch.equal(y2, ye)
