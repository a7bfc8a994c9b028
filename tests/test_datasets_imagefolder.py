"""ImageFolder trees: layout rules, decoding, resizing, the content-keyed cache and unreadable images."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo_core.errors import BadInputError, DataNotFoundError, ZooError
from zoo_plugins.datasets import imagefolder as module
from zoo_plugins.datasets.imagefolder import imagefolder


def save(path: Path, array: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def rgb(value: int, size: tuple[int, int] = (6, 5)) -> np.ndarray:
    """An H×W×3 image whose pixels encode ``value`` (so tests can recognise it)."""
    a = np.zeros((*size, 3), np.uint8)
    a[..., 0] = value
    a[..., 1] = np.arange(size[1], dtype=np.uint8)
    a[..., 2] = 255 - value
    return a


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    save(root / "train" / "dog" / "b.png", rgb(3))
    save(root / "train" / "dog" / "a.png", rgb(2))
    save(root / "train" / "cat" / "x.png", rgb(1))
    save(root / "train" / "cat" / "nested" / "y.png", rgb(4))
    save(root / "train" / ".hidden" / "z.png", rgb(99))
    save(root / "train" / "cat" / ".thumb.png", rgb(98))
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    save(root / "test" / "dog" / "t.png", rgb(5))
    save(root / "test" / "emu" / "u.png", rgb(6))  # a class only the test split has
    return root


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ZOO_CACHE", str(folder))
    return folder


def test_classes_are_sorted_across_splits_and_hidden_entries_skipped(tree: Path) -> None:
    train = imagefolder(root=tree, split="train")
    assert train.classes == ["cat", "dog", "emu"]
    assert train.class_to_idx == {"cat": 0, "dog": 1, "emu": 2}
    assert train.images.shape == (4, 3, 6, 5) and train.images.dtype == torch.uint8
    assert train.labels.tolist() == [0, 0, 1, 1]
    assert train.images[:, 0, 0, 0].tolist() == [4, 1, 2, 3]  # cat: nested/y, x; dog: a, b (sorted paths)
    test = imagefolder(root=tree, split="test")
    assert test.classes == train.classes and test.labels.tolist() == [1, 2]


def test_pixels_round_trip_and_stats_are_computed(tree: Path) -> None:
    data = imagefolder(root=tree, split="test")
    assert torch.equal(data.images[0], torch.from_numpy(rgb(5)).permute(2, 0, 1))
    assert len(data.mean) == 3 and len(data.std) == 3
    assert data.mean[0] == pytest.approx((5 + 6) / 2 / 255)


def test_the_second_load_comes_from_the_cache(
    tree: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = imagefolder(root=tree, split="train")
    assert len(list(cache_dir.glob("imagefolder-*.pt"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached tree must not be decoded again")

    monkeypatch.setattr(module, "decode_image", no_decoding)
    second = imagefolder(root=tree, split="train")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.mean == second.mean


def test_a_changed_tree_is_decoded_again(tree: Path, cache_dir: Path) -> None:
    imagefolder(root=tree, split="train")
    save(tree / "train" / "dog" / "c.png", rgb(7))
    assert len(imagefolder(root=tree, split="train")) == 5
    path = tree / "train" / "dog" / "a.png"
    save(path, rgb(77))
    os.utime(path, ns=(1, 1))
    assert 77 in imagefolder(root=tree, split="train").images[:, 0, 0, 0].tolist()
    assert len(list(cache_dir.glob("imagefolder-*.pt"))) == 3


def test_cache_can_be_disabled(tree: Path, cache_dir: Path) -> None:
    imagefolder(root=tree, split="train", cache=False)
    assert not cache_dir.exists()


def test_unreadable_images_are_skipped_with_a_warning_naming_them(tree: Path) -> None:
    broken = tree / "train" / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable image.*broken\.png"):
        data = imagefolder(root=tree, split="train")
    assert len(data) == 4
    with pytest.warns(UserWarning, match="broken.png"):  # reported again when served from the cache
        imagefolder(root=tree, split="train")


def test_strict_makes_an_unreadable_image_fatal(tree: Path) -> None:
    (tree / "train" / "cat" / "empty.jpg").write_bytes(b"")
    with pytest.raises(ZooError, match=r"empty\.jpg"):
        imagefolder(root=tree, split="train", strict=True)


def test_different_sizes_get_one_size_and_image_size_chooses(tree: Path) -> None:
    save(tree / "train" / "cat" / "big.png", rgb(8, size=(12, 10)))
    mixed = imagefolder(root=tree, split="train")  # resized to one size (the median), said once
    assert mixed.images.shape[0] == 5 and mixed.images.dtype == torch.uint8
    data = imagefolder(root=tree, split="train", image_size=4)
    assert data.images.shape == (5, 3, 4, 4)
    assert imagefolder(root=tree, split="train", image_size=(3, 7)).images.shape == (5, 3, 3, 7)
    with pytest.raises(BadInputError, match="image_size"):
        imagefolder(root=tree, split="train", image_size=0)


def test_grey_trees_stay_grey_and_mixed_trees_become_rgb(tmp_path: Path) -> None:
    root = tmp_path / "grey"
    save(root / "train" / "a" / "0.png", np.full((4, 4), 10, np.uint8))
    save(root / "train" / "b" / "1.png", np.full((4, 4), 20, np.uint8))
    data = imagefolder(root=root, split="train")
    assert data.images.shape == (2, 1, 4, 4) and data.images.flatten().unique().tolist() == [10, 20]
    save(root / "train" / "b" / "2.jpg", rgb(30, size=(4, 4)), fmt="JPEG")
    mixed = imagefolder(root=root, split="train")
    assert mixed.images.shape == (3, 3, 4, 4)
    assert torch.equal(mixed.images[0], torch.full((3, 4, 4), 10, dtype=torch.uint8))
    assert imagefolder(root=root, split="train", channels=1).images.shape == (3, 1, 4, 4)


def test_many_files_decode_in_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "many"
    for i in range(12):
        save(root / "train" / f"c{i % 3}" / f"{i:02d}.png", rgb(i))
    monkeypatch.setattr(module, "_CHUNK", 4)  # three chunks → a pool of two processes
    data = imagefolder(root=root, split="train", workers=2, cache=False)
    assert data.images[:, 0, 0, 0].tolist() == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]


def test_a_missing_split_lists_the_ones_there(tree: Path) -> None:
    with pytest.raises(BadInputError, match="valid splits are test, train"):
        imagefolder(root=tree, split="val")


def test_a_missing_tree_says_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"<split>/<class>/<image>.*--data-dir"):
        imagefolder(root=tmp_path / "nowhere", split="train")
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="No images"):
        imagefolder(root=tmp_path / "empty", split="train")


def test_download_is_refused(tree: Path) -> None:
    with pytest.raises(BadInputError, match="nothing to download"):
        imagefolder(root=tree, download=True)


def test_a_damaged_cache_is_rebuilt(tree: Path, cache_dir: Path) -> None:
    imagefolder(root=tree, split="train")
    (cache_file,) = cache_dir.glob("imagefolder-*.pt")
    cache_file.write_bytes(b"junk")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = imagefolder(root=tree, split="train")
    assert len(data) == 4 and any("cache" in str(w.message) for w in caught)
