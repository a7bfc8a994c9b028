"""The epoch plan of a sharded data set: pure functions of the shard sizes, (seed, epoch) and the rank."""

from __future__ import annotations

import pytest

from zoo_core.data.order import shard_size
from zoo_core.data.shard_plan import (
    batch_sizes,
    done_before,
    pieces,
    rank_run,
    shards_in_order,
    worker_pieces,
)

SIZES = [5, 3, 7, 1, 4]  # 20 samples in shards of uneven sizes


def positions(sizes, order, piece_list):
    """The unshuffled sample indices a list of pieces covers."""
    offsets = [sum(sizes[:k]) for k in range(len(sizes))]
    return [offsets[s] + i for s, a, b in piece_list for i in range(a, b)]


def test_pieces_cut_the_shard_sequence_and_wrap_past_its_end():
    order = [2, 0, 1, 3, 4]
    assert pieces(SIZES, order, 0, 7) == [(2, 0, 7)]
    assert pieces(SIZES, order, 6, 3) == [(2, 6, 7), (0, 0, 2)]
    assert pieces(SIZES, order, 18, 4) == [(4, 2, 4), (2, 0, 2)]  # padding wraps to the start


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize(("drop_last", "pad"), [(False, False), (True, False), (False, True)])
def test_rank_runs_follow_one_another_with_the_map_style_counts(world, drop_last, pad):
    runs = [rank_run(20 + 1, rank=r, world_size=world, drop_last=drop_last, pad=pad) for r in range(world)]
    assert [count for _, count in runs] == [shard_size(21, drop_last, world, r, pad) for r in range(world)]
    assert [first for first, _ in runs] == [sum(c for _, c in runs[:r]) for r in range(world)]


@pytest.mark.parametrize("roles", [1, 2, 3])
@pytest.mark.parametrize("world", [1, 2])
def test_ranks_and_workers_together_read_every_sample_once(roles, world):
    seen = []
    for rank in range(world):
        for role in range(roles):
            got, made = worker_pieces(
                SIZES, seed=3, epoch=1, shuffle=True, rank=rank, world_size=world, drop_last=False,
                pad=False, batch_size=3, role=role, roles=roles,
            )  # fmt: skip
            seen += positions(SIZES, None, got)
            assert sum(size for _, size in made) == sum(b - a for _, a, b in got)
            assert all(b % roles == role for b, _ in made)
    assert sorted(seen) == list(range(20))


def test_the_shard_order_is_a_function_of_seed_and_epoch():
    assert shards_in_order(SIZES, seed=0, epoch=0, shuffle=False) == [0, 1, 2, 3, 4]
    a = shards_in_order(SIZES, seed=0, epoch=0, shuffle=True)
    assert a == shards_in_order(SIZES, seed=0, epoch=0, shuffle=True)
    assert sorted(a) == [0, 1, 2, 3, 4]
    assert any(shards_in_order(SIZES, seed=0, epoch=e, shuffle=True) != a for e in range(1, 5))


def test_batches_and_what_a_resumed_worker_skips():
    assert batch_sizes(10, 3, drop_last=False) == [3, 3, 3, 1]
    assert batch_sizes(10, 3, drop_last=True) == [3, 3, 3]
    # resuming at batch 5 with 2 workers: worker 0 made batches 0, 2, 4; worker 1 made 1, 3
    assert [done_before(5, role, 2) for role in (0, 1)] == [3, 2]
    assert [done_before(0, role, 2) for role in (0, 1)] == [0, 0]
