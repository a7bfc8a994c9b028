"""The on-device pipeline: batched crop/flip/normalize ops and the loaders' order, resumption and sharding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo_core.data.dataset import InMemoryDataset
from zoo_core.data.loader import BatchTransform, DeviceLoader, StreamLoader, make_loader
from zoo_core.data.ops import normalize, random_crop, random_flip
from zoo_core.data.stats import channel_stats

N, C, H, W = 50, 3, 8, 8


def make_images(n: int = N) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, C, H, W), generator=g, dtype=torch.uint8)


def loader(images: torch.Tensor, **kwargs) -> DeviceLoader:
    """Labels are the sample indices, so each batch says which samples it holds."""
    options = dict(batch_size=8, device="cpu", mean=(0.0,) * C, std=(1.0,) * C, train=True)
    options.update(kwargs)
    return DeviceLoader(images, torch.arange(len(images)), **options)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- ops ------------------------------------------------------------------------------------------------


def test_flip_mirrors_some_images_and_leaves_the_others() -> None:
    x = make_images(200)
    out = random_flip(x, gen())
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (flipped | kept).all()
    assert 60 < int(flipped.sum()) < 140  # p = 0.5 per image


def test_flip_probability_zero_and_one() -> None:
    x = make_images()
    assert torch.equal(random_flip(x, gen(), p=0.0), x)
    assert torch.equal(random_flip(x, gen(), p=1.0), x.flip(-1))


def test_crop_is_a_window_of_the_padded_image() -> None:
    x = make_images(30)
    pad = 2
    out = random_crop(x, pad, gen())
    padded = F.pad(x, (pad,) * 4)
    offsets = set()
    for i in range(len(x)):  # find each image's window among all (2p+1)² candidates
        matches = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(out[i], padded[i, :, dy : dy + H, dx : dx + W])
        ]
        assert matches, f"image {i} is not a window of its padded self"
        offsets.add(matches[0])
    assert len(offsets) > 5  # per-image randomness, not one shift for the batch


def test_crop_fills_with_the_fill_value_and_keeps_dtype() -> None:
    x = torch.full((64, 1, 4, 4), 7.0)
    out = random_crop(x, 3, gen(), fill=-1.0)
    assert out.dtype == x.dtype and out.shape == x.shape
    assert set(out.unique().tolist()) <= {7.0, -1.0}
    assert (out == -1.0).any()
    assert torch.equal(random_crop(x, 0, gen()), x)


def test_ops_are_deterministic_for_a_generator_seed() -> None:
    x = make_images()
    assert torch.equal(random_crop(x, 4, gen(3)), random_crop(x, 4, gen(3)))
    assert torch.equal(random_flip(x, gen(3)), random_flip(x, gen(3)))
    assert not torch.equal(random_crop(x, 4, gen(3)), random_crop(x, 4, gen(4)))


def test_ops_keep_channels_last_inputs_correct() -> None:
    x = make_images()
    cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(random_crop(cl, 2, gen(5)), random_crop(x, 2, gen(5)))


def test_small_constants_are_made_once_per_device_and_dtype() -> None:
    from zoo_core.data.ops import device_constant

    table = device_constant(((1, 2), (3, 4)), "cpu", torch.float32)
    assert table is device_constant(((1, 2), (3, 4)), "cpu", torch.float32)  # no copy the second time
    assert table.dtype == torch.float32 and table.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert device_constant((1, 2), "cpu").dtype == torch.int64
    assert device_constant((1, 2), "cpu", torch.uint8) is not device_constant((1, 2), "cpu")


def test_normalize_gives_float32_standard_scores() -> None:
    x = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    out = normalize(x, (0.0, 0.5, 0.2), (1.0, 0.5, 0.1))
    assert out.dtype == torch.float32
    assert torch.allclose(out[:, :, 0, 0], torch.tensor([[0.0, 1.0, 0.0]] * 2), atol=1e-6)


def test_channel_stats_match_float_computation() -> None:
    x = make_images()
    mean, std = channel_stats(x)
    f = x.double() / 255
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), f.mean((0, 2, 3)))
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), f.std((0, 2, 3), unbiased=False))


# -- DeviceLoader -----------------------------------------------------------------------------------------


def test_batches_have_shapes_dtypes_and_normalization() -> None:
    images = make_images()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    dl = DeviceLoader(images, torch.arange(N), batch_size=16, device="cpu", mean=mean, std=std, train=False)
    batches = list(dl)
    assert len(dl) == len(batches) == 4  # eval keeps the last partial batch
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    x, y = batches[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (16, C, H, W)
    assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(N))  # eval: no shuffle
    m, s = torch.tensor(mean).view(1, C, 1, 1), torch.tensor(std).view(1, C, 1, 1)
    assert torch.allclose(x * s + m, images[:16].float() / 255, atol=1e-5)


def test_train_drops_the_last_partial_batch_and_shuffles() -> None:
    dl = loader(make_images())
    ys = [y for _, y in dl]
    assert len(dl) == len(ys) == N // 8
    seen = torch.cat(ys)
    assert len(seen.unique()) == len(seen) == 48
    assert not torch.equal(seen, torch.arange(48))


def test_same_seed_and_epoch_give_the_same_batches() -> None:
    images = make_images()
    a = loader(images, crop_padding=2, flip=True, seed=7)
    b = loader(images, crop_padding=2, flip=True, seed=7)
    for epoch in (0, 3):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_epochs_and_seeds_change_the_order() -> None:
    images = make_images()
    a = loader(images, seed=1)
    first = torch.cat([y for _, y in a])
    a.set_epoch(1)
    assert not torch.equal(first, torch.cat([y for _, y in a]))
    assert not torch.equal(first, torch.cat([y for _, y in loader(images, seed=2)]))


def test_resuming_from_a_batch_index_replays_the_uninterrupted_epoch() -> None:
    images = make_images()
    full = loader(images, crop_padding=2, flip=True, seed=3)
    full.set_epoch(5)
    expected = list(full)
    resumed = loader(images, crop_padding=2, flip=True, seed=3)  # a fresh process after a restart
    resumed.set_epoch(5)
    tail = list(resumed.iter_from(2))
    assert len(tail) == len(expected) - 2
    for (xa, ya), (xb, yb) in zip(expected[2:], tail, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_augmentation_applies_only_in_training() -> None:
    images = make_images()
    ev = loader(images, train=False, crop_padding=4, flip=True)
    x, y = next(iter(ev))
    assert torch.allclose(x * 255, images[y].float(), atol=1e-3)
    tr = loader(images, train=True, shuffle=False, crop_padding=4, flip=True)
    x, y = next(iter(tr))
    assert not torch.allclose(x * 255, images[y].float(), atol=1e-3)


def test_channels_last_output() -> None:
    dl = loader(make_images(), channels_last=True, crop_padding=1, flip=True)
    x, _ = next(iter(dl))
    assert x.is_contiguous(memory_format=torch.channels_last)
    # the same values as the contiguous batch, bit for bit (on a CPU, normalized with whole-image planes)
    flat, _ = next(iter(loader(make_images(), channels_last=False, crop_padding=1, flip=True)))
    assert torch.equal(x, flat)


@pytest.mark.parametrize(("world_size", "drop_last"), [(2, True), (3, False), (4, True), (7, False)])
def test_ranks_get_disjoint_equal_shards(world_size: int, drop_last: bool) -> None:
    images = make_images()
    shards = []
    for rank in range(world_size):
        dl = loader(images, batch_size=4, rank=rank, world_size=world_size, drop_last=drop_last, seed=9)
        dl.set_epoch(2)
        ys = [y for _, y in dl]
        assert len(ys) == len(dl)
        shards.append(torch.cat(ys))
    assert len({len(s) for s in shards}) == 1
    assert (
        len(
            {
                len(loader(images, batch_size=4, rank=r, world_size=world_size, drop_last=drop_last))
                for r in range(world_size)
            }
        )
        == 1
    )
    everything = torch.cat(shards)
    if drop_last:
        assert len(everything.unique()) == len(everything)  # disjoint
    else:
        assert set(everything.tolist()) == set(range(N))  # all covered; the padding repeats a few


@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_evaluation_shards_count_every_sample_once(world_size: int) -> None:
    images = make_images()
    shards = [
        torch.cat([y for _, y in loader(images, batch_size=4, rank=r, world_size=world_size, train=False)])
        for r in range(world_size)
    ]
    everything = torch.cat(shards)
    assert sorted(everything.tolist()) == list(range(N))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_bad_rank_is_refused() -> None:
    with pytest.raises(ValueError, match="rank"):
        loader(make_images(), rank=2, world_size=2)


# -- streamed data sets ---------------------------------------------------------------------------------


class TensorDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], i


def test_stream_loader_yields_what_the_device_loader_yields() -> None:
    images = make_images()
    options = dict(
        batch_size=8,
        device="cpu",
        mean=(0.1,) * C,
        std=(0.3,) * C,
        train=True,
        crop_padding=2,
        flip=True,
        seed=4,
    )
    stream = StreamLoader(TensorDataset(images), num_workers=0, **options)
    memory = DeviceLoader(images, torch.arange(N), **options)
    for epoch in (0, 1):
        stream.set_epoch(epoch)
        memory.set_epoch(epoch)
        assert len(stream) == len(memory)
        for (xa, ya), (xb, yb) in zip(stream, memory, strict=True):
            assert torch.equal(ya, yb) and torch.equal(xa, xb)
    tail = list(stream.iter_from(3))
    assert torch.equal(torch.cat([y for _, y in tail]), torch.cat([y for _, y in list(memory)[3:]]))


def test_stream_loader_with_worker_processes() -> None:
    images = make_images()
    stream = StreamLoader(
        TensorDataset(images),
        batch_size=10,
        device="cpu",
        mean=(0.0,) * C,
        std=(1.0,) * C,
        train=False,
        num_workers=2,
    )
    ys = torch.cat([y for _, y in stream])
    assert torch.equal(ys, torch.arange(N))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("train", "size"), [(False, None), (True, None), (True, (6, 6))])
def test_cpu_workers_hand_over_the_batches_the_main_process_would_make(train, size, channels_last) -> None:
    """On a CPU the workers draw the flips (and cut the centre crop of a training size smaller than the
    stored one) and normalize: the batches are those the main process makes without workers."""
    images = make_images()
    options = dict(batch_size=10, device="cpu", mean=(0.1, 0.2, 0.3), std=(0.3, 0.2, 0.25), train=train)
    options.update(flip=True, seed=3, channels_last=channels_last, size=size)
    workers = StreamLoader(TensorDataset(images), num_workers=2, **options)
    here = StreamLoader(TensorDataset(images), num_workers=0, **options)
    assert workers.augment_in_workers is train and not here.augment_in_workers
    assert workers.normalize_in_workers and not workers.transform.normalize
    assert not here.normalize_in_workers and here.transform.normalize
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for (xa, ya), (xb, yb) in zip(workers, here, strict=True):
        assert xa.dtype == torch.float32 and xa.is_contiguous(memory_format=layout)
        assert torch.equal(ya, yb) and torch.equal(xa, xb)


def test_a_padded_crop_or_a_centre_crop_is_cut_before_normalizing() -> None:
    images = make_images()
    options = dict(batch_size=10, device="cpu", mean=(0.5,) * C, std=(0.2,) * C, num_workers=2)
    padded = StreamLoader(TensorDataset(images), train=True, crop_padding=2, **options)
    centre = StreamLoader(TensorDataset(images), train=False, size=(6, 6), **options)
    for loader in (padded, centre):
        assert not loader.normalize_in_workers and loader.transform.normalize
    x, _ = next(iter(padded))
    assert x.min().item() == pytest.approx(-2.5)  # the padding is black, normalized with the rest


def test_make_loader_picks_the_path_and_computes_missing_stats() -> None:
    images = make_images()
    data = InMemoryDataset(images, torch.zeros(N, dtype=torch.int64), ["a"])
    dl = make_loader(data, batch_size=N, device="cpu", train=False)
    assert isinstance(dl, DeviceLoader)
    x, _ = next(iter(dl))
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(C), atol=1e-4)
    assert torch.allclose(x.std((0, 2, 3), unbiased=False), torch.ones(C), atol=1e-4)
    stream = make_loader(TensorDataset(images), batch_size=8, device="cpu", train=False, num_workers=0)
    assert isinstance(stream, StreamLoader)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_loader_on_cuda_matches_its_own_replay() -> None:
    images = make_images()
    a = loader(images, device="cuda", crop_padding=2, flip=True, channels_last=True)
    x, y = next(iter(a))
    assert x.device.type == "cuda" and y.device.type == "cuda"
    x2, y2 = next(iter(loader(images, device="cuda", crop_padding=2, flip=True, channels_last=True)))
    assert torch.equal(x, x2) and torch.equal(y, y2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_batch_transform_makes_the_host_wait_for_nothing(no_host_sync) -> None:
    images = make_images().cuda()
    transform = BatchTransform(
        (0.5,) * images.shape[1],
        (0.25,) * images.shape[1],
        torch.device("cuda"),
        train=True,
        flip=True,
        channels_last=True,
        resized_crop=True,
        crop_padding=0,
    )
    generator = torch.Generator(device="cuda").manual_seed(0)
    first = transform(images, generator)  # constants made and copied once, here
    with no_host_sync():
        again = transform(images, generator.manual_seed(0))
    assert torch.equal(again, first)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("alternate_flip", [False, True])
def test_a_cuda_device_loader_epoch_makes_the_host_wait_for_nothing(
    alternate_flip: bool, no_host_sync
) -> None:
    images = make_images()
    a = loader(
        images, device="cuda", crop_padding=2, flip=True, channels_last=True, alternate_flip=alternate_flip
    )
    first = [x for x, _ in a]  # the first epoch makes the loader's device constants
    a.set_epoch(1)
    with no_host_sync():
        batches = [(x, y) for x, y in a]
    assert len(batches) == len(first) and all(x.device.type == "cuda" for x, _ in batches)
