"""The feed plan (zoo_core.data.plan): which way batches reach the device and where crops are cut, decided
by a pure function of sizes and options, and the options as one frozen object."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from zoo_core.data.dataset import InMemoryDataset
from zoo_core.data.loader import Augment, DeviceLoader, Order, StreamLoader, make_loader
from zoo_core.data.plan import crops_in_workers, normalizes_in_workers, plan_feed

HELD = (1000, 3, 256, 256)  # 196.6 MB as uint8


@pytest.mark.parametrize(
    ("options", "feed", "crops"),
    [
        (dict(in_memory=True, device_type="cuda", free_device=10**10), "device", False),
        (dict(in_memory=True, device_type="cuda", free_device=10**8), "host", False),
        (dict(in_memory=True, device_type="cuda", free_device=10**10, resized_crop=True, workers=2),
         "device", False),
        (dict(in_memory=True, device_type="cpu", resized_crop=True, workers=2), "host", True),
        (dict(in_memory=True, device_type="cpu", resized_crop=True, workers=0), "device", False),
        (dict(in_memory=True, device_type="cpu", resized_crop=True, workers=2, crop_padding=4),
         "device", False),
        (dict(in_memory=False, device_type="cpu", resized_crop=True, workers=2), "workers", True),
        (dict(in_memory=False, device_type="cuda", resized_crop=True, workers=2), "workers", False),
        (dict(in_memory=False, device_type="cuda", resized_crop=True, workers=2, wanted=True),
         "workers", True),
        (dict(in_memory=False, device_type="cpu", resized_crop=True, workers=2, decode_on_device=True),
         "device-decode", False),
    ],
)  # fmt: skip
def test_the_feed_plan_with_faked_sizes(options: dict, feed: str, crops: bool) -> None:
    plan = plan_feed(train=True, shape=HELD, **options)
    assert (plan.feed, plan.crops_in_workers) == (feed, crops) and "\n" not in plan.line


def test_evaluation_never_cuts_crops_in_the_workers() -> None:
    assert not plan_feed(
        in_memory=False, device_type="cpu", train=False, resized_crop=True, workers=2
    ).crops_in_workers


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (dict(device_type="cpu", train=True, flip=True), True),  # a streamed set's random flips alone
        (dict(device_type="cpu", train=False, flip=True), False),
        (dict(device_type="cpu", train=True, flip=True, crop_padding=4), False),
        (dict(device_type="cuda", train=True, flip=True), False),
        (dict(device_type="cpu", train=True), False),
    ],
)
def test_streamed_random_flips_are_drawn_in_cpu_workers(options: dict, expected: bool) -> None:
    options = dict(resized_crop=False, crop_padding=0, workers=2) | options
    assert crops_in_workers(**options) is expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (dict(), True),
        (dict(workers=0), False),
        (dict(device_type="cuda"), False),
        (dict(resized_crop=True), False),  # cut from the uint8 batch first
        (dict(crop_padding=4), False),  # padded with black, then normalized
        (dict(size=(6, 6)), False),  # the centre crop may still cut the batch
        (dict(size=(6, 6), sized_in_workers=True), True),  # the workers cut it to the size
    ],
)
def test_cpu_workers_normalize_only_what_is_left_uncut(options: dict, expected: bool) -> None:
    base = dict(device_type="cpu", workers=2, resized_crop=False, crop_padding=0, size=None)
    assert normalizes_in_workers(**(base | {"sized_in_workers": False} | options)) is expected


def test_the_options_object_and_its_keywords_build_the_same_loader() -> None:
    images = torch.randint(
        0, 256, (12, 3, 10, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    data = InMemoryDataset(images, torch.arange(12) % 2, ["a", "b"], mean=(0.5,) * 3, std=(0.2,) * 3)
    augment, order = Augment(crop_padding=2, flip=True), Order(seed=4)
    objects = make_loader(data, batch_size=4, device="cpu", train=True, augment=augment, order=order)
    words = make_loader(data, batch_size=4, device="cpu", train=True, crop_padding=2, flip=True, seed=4)
    assert isinstance(objects, DeviceLoader) and isinstance(words, DeviceLoader)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(objects, words, strict=True))
    with pytest.raises(dataclasses.FrozenInstanceError):
        augment.flip = False  # type: ignore[misc]
    with pytest.raises(TypeError, match="unexpected loader option"):
        make_loader(data, batch_size=4, device="cpu", train=True, crop_paddding=2)
    assert isinstance(
        make_loader(data, batch_size=4, device="cpu", train=True, resized_crop=True), StreamLoader
    )
