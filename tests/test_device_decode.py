"""JPEGs decoded a batch at a time on the training device (imagefolder ``decode="device"``), tested with
the CPU as the device: the same code path the GPU takes, with torchvision's CPU decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from zoo_core.cli import cli
from zoo_core.data.loader import make_loader
from zoo_core.errors import ZooError
from zoo_plugins.datasets.imagefolder import imagefolder


def photo(seed: int, size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size[1], size[0]), Image.Resampling.BILINEAR))


@pytest.fixture
def jpegs(tmp_path: Path) -> Path:
    """JPEG photos of mixed sizes in two classes, and one PNG among them."""
    root = tmp_path / "photos"
    sizes = [(150, 200), (180, 160), (200, 300), (160, 160), (170, 230), (210, 190)]
    for k, size in enumerate(sizes):
        path = root / "train" / ("cat" if k % 2 else "dog") / f"{k}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo(k, size)).save(path, quality=95)
    Image.fromarray(photo(9, (150, 150))).save(root / "train" / "dog" / "9.png")
    return root


def streamed(root: Path, decode: str, **options):
    return imagefolder(
        root=root, split="train", image_size=128, data_mode="stream", cache=False, decode=decode, **options
    )


def batches(root: Path, decode: str, **options) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = streamed(root, decode)
    loader = make_loader(data, batch_size=4, device="cpu", train=False, num_workers=1, **options)
    return [(x, y) for x, y in loader], data


def test_device_decoding_on_the_cpu_gives_the_workers_pixels_exactly(jpegs: Path) -> None:
    # the same libjpeg calls and the one resize rule: equal on the CPU; on a GPU the resize runs in float32
    # and is rounded, within one level (ops.resize_region)
    on_device, _ = batches(jpegs, "device")
    in_workers, _ = batches(jpegs, "workers")
    assert [y.tolist() for _, y in on_device] == [y.tolist() for _, y in in_workers]
    for (a, _), (b, _) in zip(on_device, in_workers, strict=True):
        assert a.shape == b.shape and a.shape[1:] == (3, 128, 128)
        assert torch.equal(a, b)


def test_device_decoded_training_crops_are_the_workers_crops_within_a_level(jpegs: Path) -> None:
    # the same boxes and flips; the device cuts them with the batched gathers, a worker with torch's uint8
    # kernel (ops.resized_crop against ops.resized_crop_one)
    options = dict(batch_size=3, device="cpu", train=True, resized_crop=True, flip=True, num_workers=1)
    on_device = make_loader(streamed(jpegs, "device"), **options)
    in_workers = make_loader(streamed(jpegs, "workers"), **options)
    assert on_device.decode_on_device and in_workers.augment_in_workers
    std = torch.tensor(on_device.std).view(1, -1, 1, 1) * 255
    for (a, ya), (b, yb) in zip(on_device, in_workers, strict=True):
        assert ((a - b) * std).abs().max() <= 1 + 1e-3 and torch.equal(ya, yb)


def test_a_jpeg_turned_by_exif_is_decoded_in_the_worker(jpegs: Path) -> None:
    from hostile import exif_jpeg

    turned = jpegs / "train" / "dog" / "0.jpg"
    turned.write_bytes(exif_jpeg(photo(0, (150, 200)), 6))  # the device decoder would ignore its EXIF
    data = streamed(jpegs, "device")
    (image, _), _ = data.encoded(data.paths.index("dog/0.jpg"))
    assert image.shape == (3, *data.size)  # decoded, upright, at the stored size


def test_each_file_is_read_once_whether_it_is_a_jpeg_or_not(jpegs: Path, monkeypatch) -> None:
    data = streamed(jpegs, "device")
    reads: list[str] = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or read_bytes(self))
    items = [data.encoded(i) for i in range(len(data))]
    assert sorted(reads) == sorted(Path(p).name for p in data.paths)
    decoded = [image for (image, _), _ in items if image.ndim == 3]  # the PNG, decoded in the worker
    assert len(decoded) == 1 and decoded[0].shape == (3, *data.size)  # the stored size


def test_the_loader_follows_the_data_sets_choice(jpegs: Path) -> None:
    data = streamed(jpegs, "device")
    loader = make_loader(data, batch_size=4, device="cpu", train=True, resized_crop=True, num_workers=1)
    assert loader.decode_on_device and not loader.augment_in_workers  # the device cuts the crops
    x, _ = next(iter(loader))
    assert x.shape == (4, 3, 128, 128)


def test_a_jpeg_that_does_not_decode_is_skipped_with_its_name_or_fatal_when_strict(
    jpegs: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = jpegs / "train" / "cat" / "1.jpg"
    data = bad.read_bytes()  # its headers and end marker, nothing decodable between: sent to the device
    bad.write_bytes(data[: data.index(b"\xff\xda")] + b"\xff\xd9")
    got, data = batches(jpegs, "device")
    labels = torch.cat([y for _, y in got])
    position = data.paths.index("cat/1.jpg")
    err = capsys.readouterr().err
    assert "skipped unreadable image" in err and "cat/1.jpg (the JPEG did not decode on cpu)" in err
    images = torch.cat([x for x, _ in got])
    stand_in = position + 1  # the next image of its batch takes its place, with its label
    assert torch.equal(images[position], images[stand_in]) and labels[position] == labels[stand_in]
    loader = make_loader(streamed(jpegs, "device", strict=True), batch_size=4, device="cpu", train=False)
    with pytest.raises(ZooError, match=r"cat/1\.jpg"):
        list(loader)


def test_decode_is_a_choice_and_only_for_data_sets_that_take_it(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["train", "digits", "lenet", "--decode", "gpu"])
    assert bad.exit_code == 2 and "--decode" in bad.output
    other = runner.invoke(cli, ["train", "digits", "lenet", "--decode", "device", "--out", str(tmp_path)])
    assert other.exit_code == 2 and "does not take --decode" in other.output


@pytest.mark.parametrize(
    ("mode", "options", "components"),
    [("RGB", {}, 3), ("RGB", {"progressive": True}, 3), ("L", {}, 1), ("CMYK", {}, 4)],
)
def test_the_jpeg_header_walk_reads_what_pillow_reads(tmp_path: Path, mode, options, components) -> None:
    from zoo_core.data.decode import jpeg_header

    path = tmp_path / "p.jpg"
    Image.fromarray(photo(0, (150, 230))).convert(mode).save(path, quality=90, **options)
    assert jpeg_header(path.read_bytes()) == (230, 150, components)


def test_the_jpeg_header_walk_gives_up_on_anything_else(tmp_path: Path) -> None:
    from zoo_core.data.decode import jpeg_header

    Image.fromarray(photo(0, (40, 40))).save(tmp_path / "p.png")
    Image.fromarray(photo(0, (40, 40))).save(tmp_path / "p.jpg")
    assert jpeg_header((tmp_path / "p.png").read_bytes()) is None
    assert jpeg_header((tmp_path / "p.jpg").read_bytes()[:20]) is None  # cut before its frame header
    assert jpeg_header(b"\xff\xd8\xff\xda\x00\x02") is None  # a scan with no frame before it
