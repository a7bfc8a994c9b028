"""Which feed brings a data set's batches to the device, and where its random resized crops are cut:
decided once, by pure functions of the sizes and options (tested with the sizes faked).

- an in-memory set is held on the device whole, unless the device is a GPU whose free memory it does not
  fit (then it is copied from host memory batch by batch), or the device is a CPU cutting random resized
  crops (then DataLoader workers cut them image by image from host memory, as for a streamed set);
- a streamed set is decoded in DataLoader workers, or on the device when it asks for it
  (``contracts.StreamedDataset``); its workers cut the crops on a CPU, the device elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo_core.data.memory import plan_data_mode

FEEDS = ("device", "host", "workers", "device-decode")


@dataclass(frozen=True)
class FeedPlan:
    """``feed`` (one of FEEDS), whether the workers cut the crops, and the one line that says why."""

    feed: str
    crops_in_workers: bool
    line: str


def crops_in_workers(
    *,
    device_type: str,
    train: bool,
    resized_crop: bool,
    crop_padding: int,
    workers: int,
    wanted: bool | None = None,
    decode_on_device: bool = False,
    flip: bool = False,
) -> bool:
    """Whether DataLoader workers cut the random resized crops and draw the random flips (``flip``: a
    streamed set's random flips alone are drawn there too): when training with them and workers, not
    decoding on the device (the device cuts what it decodes), and no padded crop draws from the batch's
    generator between crop and flip; by default (``wanted`` None) on a CPU, where the batched crop or
    flip would hold the cores the decoding workers need."""
    if decode_on_device or not (train and (resized_crop or flip)) or crop_padding or workers <= 0:
        return False
    return device_type == "cpu" if wanted is None else wanted


def normalizes_in_workers(
    *,
    device_type: str,
    workers: int,
    resized_crop: bool,
    crop_padding: int,
    size: tuple[int, int] | None,
    sized_in_workers: bool,
) -> bool:
    """Whether DataLoader workers hand over normalized float32 batches: on a CPU device, with workers,
    when the batch transform has nothing left to cut, only flips and the layout: no random resized or
    padded crop (a padded crop pads with black before normalizing), and no ``size`` the workers did not
    cut the batches to (``sized_in_workers``; else the centre crop may still cut them). Elsewhere uint8
    crosses to the device (a quarter of the bytes) and is normalized there. (Files decoded on the device
    are normalized there: the caller does not ask.)"""
    geometry_left = resized_crop or crop_padding or (size is not None and not sized_in_workers)
    return device_type == "cpu" and workers > 0 and not geometry_left


def plan_feed(
    *,
    in_memory: bool,
    device_type: str,
    train: bool,
    resized_crop: bool = False,
    crop_padding: int = 0,
    workers: int = 0,
    wanted: bool | None = None,
    decode_on_device: bool = False,
    shape: tuple[int, int, int, int] = (0, 0, 0, 0),
    free_device: int | None = None,
) -> FeedPlan:
    """The feed of a data set: ``shape`` (N, C, H, W) of an in-memory one against ``free_device`` bytes
    (a GPU's free memory; None: no limit), the loader options, the workers it may use."""
    crops = crops_in_workers(
        device_type=device_type,
        train=train,
        resized_crop=resized_crop,
        crop_padding=crop_padding,
        workers=workers,
        wanted=wanted,
        decode_on_device=decode_on_device and not in_memory,
    )
    where = "in the workers" if crops else "on the device"
    if not in_memory:
        feed = "device-decode" if decode_on_device else "workers"
        decoded = "on the device" if decode_on_device else "in DataLoader workers"
        return FeedPlan(feed, crops, f"streamed: decoded {decoded}, crops cut {where}")
    if free_device is not None:
        n, c, h, w = shape
        plan = plan_data_mode(
            "auto",
            images=n,
            shape=(c, h, w),
            free=free_device,
            where="free on the device",
            copies=1,
            what="data set",
            streamed="copied from host memory batch by batch",
        )
        if not plan.fits:
            return FeedPlan("host", False, plan.line)
    if crops:
        return FeedPlan("host", True, "held in memory: random resized crops cut in DataLoader workers")
    return FeedPlan("device", False, "held on the device")
