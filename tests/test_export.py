"""``zoo export``: an in-memory data set written as PNG class folders reads back as the same data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_datasets_cifar10 import write_cifar

from zoo_core.data.dataset import InMemoryDataset
from zoo_core.data.export import export_image_folder
from zoo_core.errors import BadInputError
from zoo_plugins.datasets.cifar10 import cifar10
from zoo_plugins.datasets.digits import digits
from zoo_plugins.datasets.imagefolder import imagefolder


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def source_order(root: Path, split: str, data: InMemoryDataset) -> torch.Tensor:
    """The source index of each image read back: exported files are named by it, listed class by class."""
    names = sorted((p.parent.name, p.name) for p in (root / split).glob("*/*.png"))
    by_class = {c: i for i, c in enumerate(data.classes)}
    return torch.tensor(
        [int(n.removesuffix(".png")) for _, n in sorted(names, key=lambda t: (by_class[t[0]], t[1]))]
    )


def test_cifar10_exports_and_reads_back_through_imagefolder_and_cifar10(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py")
    out = tmp_path / "png"
    for split in ("train", "test"):
        source = cifar10(root=tmp_path, split=split)
        target = export_image_folder(source, out, split, progress=False)
        assert target == out / split
        assert len(list(target.glob("*/*.png"))) == len(source)
    for split in ("train", "test"):
        source = cifar10(root=tmp_path, split=split)
        for data in (imagefolder(root=out, split=split), cifar10(root=out, split=split, format="images")):
            order = source_order(out, split, data)
            assert torch.equal(data.images, source.images[order])
            assert [data.classes[i] for i in data.labels] == [source.classes[i] for i in source.labels[order]]


def test_grey_images_round_trip(tmp_path: Path) -> None:
    source = digits(split="test")
    export_image_folder(source, tmp_path, "test", progress=False)
    back = imagefolder(root=tmp_path, split="test")
    assert back.classes == source.classes and back.images.shape == source.images.shape
    order = source_order(tmp_path, "test", back)
    assert torch.equal(back.images, source.images[order]) and torch.equal(back.labels, source.labels[order])


def test_an_existing_split_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "test").mkdir()
    with pytest.raises(BadInputError, match="already exists"):
        export_image_folder(digits(split="test"), tmp_path, "test", progress=False)


def test_an_interrupted_export_leaves_no_split_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        export_image_folder(digits(split="test"), tmp_path, "test", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_class_names_are_refused(tmp_path: Path) -> None:
    data = InMemoryDataset(
        torch.zeros(1, 3, 2, 2, dtype=torch.uint8), torch.zeros(1, dtype=torch.int64), ["a/b"]
    )
    with pytest.raises(BadInputError, match="folder name"):
        export_image_folder(data, tmp_path, "train", progress=False)


def test_the_export_command(tmp_path: Path, run_zoo) -> None:
    out = tmp_path / "digits"
    result = run_zoo("export", "digits", str(out), "--split", "test")
    assert result.returncode == 0, result.stderr
    assert "wrote 355 images of 10 classes" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["test"]
    again = run_zoo("export", "digits", str(out))
    assert again.returncode == 2 and "already exist" in again.stderr
    assert not (out / "train").exists()  # nothing written when any target is taken
    bad = run_zoo("export", "digits", str(tmp_path / "x"), "--split", "val")
    assert bad.returncode == 2 and "valid splits are train, test or all" in bad.stderr
