"""The StreamedDataset contract (zoo_core.contracts): a third-party streamed set gets worker crops with
nothing more than ``__getitem__``, and device decoding by ``decode = "device"``, ``encoded`` and
``decode_batch``; ``zoo check`` holds it to them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo_core import get_catalog
from zoo_core.conformance import check_split
from zoo_core.contracts import ContractError, StreamedDataset
from zoo_core.data.dataset import InMemoryDataset
from zoo_core.data.loader import make_loader

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


class Pngs(torch.utils.data.Dataset):
    """A third party's streamed set: PNG files held as bytes, decoded by torchvision (workers or device)."""

    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    def __init__(self, n: int = 10, decode: str = "workers") -> None:
        self.classes = ["a", "b"]
        rng = np.random.default_rng(0)
        self.pixels = rng.integers(0, 256, (n, 40, 40, 3), dtype=np.uint8)
        self.files = []
        for picture in self.pixels:
            buffer = io.BytesIO()
            Image.fromarray(picture).save(buffer, "PNG")
            self.files.append(buffer.getvalue())
        self.decode = decode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.pixels[index]).permute(2, 0, 1).contiguous(), index % 2

    def encoded(self, index: int) -> tuple[tuple[torch.Tensor, int], int]:
        return (torch.frombuffer(bytearray(self.files[index]), dtype=torch.uint8), index), index % 2

    def decode_batch(self, items, device):
        from torchvision.io import decode_png

        return torch.stack([decode_png(data) for data, _ in items]).to(device), []


def held(data: Pngs) -> InMemoryDataset:
    images = torch.stack([data[i][0] for i in range(len(data))])
    return InMemoryDataset(images, torch.arange(len(data)) % 2, data.classes, mean=data.mean, std=data.std)


def test_a_third_party_streamed_set_is_the_protocol_and_gets_worker_crops() -> None:
    data = Pngs()
    assert isinstance(data, StreamedDataset)
    options = dict(batch_size=4, device="cpu", train=True, resized_crop=True, flip=True, size=(32, 32))
    streamed = make_loader(data, **options, num_workers=1)
    assert streamed.augment_in_workers and not streamed.decode_on_device
    memory = make_loader(held(data), **options)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(streamed, memory, strict=True))


def test_a_third_party_streamed_set_decodes_on_the_device_by_the_contract() -> None:
    data = Pngs(decode="device")
    loader = make_loader(data, batch_size=4, device="cpu", train=False, num_workers=1)
    assert loader.decode_on_device
    plain = make_loader(Pngs(), batch_size=4, device="cpu", train=False, num_workers=1)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(loader, plain, strict=True))


class HalfDone(Pngs):
    decode_batch = None  # asks for device decoding without the method that does it


def test_asking_for_device_decoding_without_the_methods_breaks_the_contract() -> None:
    with pytest.raises(ContractError, match=r"decode='device' but has no decode_batch\(\)"):
        make_loader(HalfDone(decode="device"), batch_size=4, device="cpu", train=False, num_workers=0)


class WrongSize(Pngs):
    def decode_batch(self, items, device):
        x, stand_ins = super().decode_batch(items, device)
        return x[:, :, :20], stand_ins


def test_zoo_check_holds_a_streamed_split_to_the_contract(tmp_path: Path) -> None:
    entry = get_catalog().datasets.get("imagefolder")
    assert check_split(entry, Pngs(decode="device"), "train").startswith("streamed, 10 images")
    with pytest.raises(ContractError, match=r"decode_batch: the batch must be uint8 \(2, 3, 40, 40\)"):
        check_split(entry, WrongSize(decode="device"), "train")
    with pytest.raises(ContractError, match="has no decode_batch"):
        check_split(entry, HalfDone(decode="device"), "train")
