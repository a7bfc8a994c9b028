"""MNIST: official IDX files, plain or gzip, found in the root or its conventional subfolders, checked."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo_core.errors import BadInputError, DataNotFoundError, ZooError
from zoo_plugins.datasets.mnist import mnist, read_idx

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, *, gz: bool = True, n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            data = idx_bytes(array)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        written[split] = (images, labels)
    return written


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("where", ["", "mnist", "MNIST/raw"])
def test_reads_idx_files_plain_or_gzip_wherever_they_conventionally_are(
    tmp_path: Path, gz: bool, where: str
) -> None:
    written = write_mnist(tmp_path / where, gz=gz)
    for split in ("train", "test"):
        data = mnist(root=tmp_path, split=split)
        images, labels = written[split]
        assert data.images.shape == (len(labels), 1, 28, 28) and data.images.dtype == torch.uint8
        assert torch.equal(data.images[:, 0], torch.from_numpy(images))
        assert torch.equal(data.labels, torch.from_numpy(labels.astype(np.int64)))
        assert data.classes == [str(d) for d in range(10)]
        assert data.mean == (0.1307,)


def test_wrong_magic_number_is_reported(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[2] = 0x0D  # float data
    path.write_bytes(bytes(raw))
    with pytest.raises(ZooError, match=r"t10k-labels-idx1-ubyte.*magic 0x00000d01, expected 0x00000801"):
        mnist(root=tmp_path, split="test")


def test_images_file_given_as_labels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros((2, 3, 3), np.uint8)))
    with pytest.raises(ZooError, match="magic"):
        read_idx(path, ndim=1)


def test_size_mismatch_and_truncation_are_reported(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ZooError, match=r"12×28×28 = 9408 bytes of data, the file holds 9398"):
        mnist(root=tmp_path, split="train")
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ZooError, match="too short"):
        mnist(root=tmp_path, split="train")


def test_damaged_gzip_is_reported(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ZooError, match="gzip"):
        mnist(root=tmp_path, split="test")


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ZooError, match=r"5 images but .* 4 labels"):
        mnist(root=tmp_path, split="test")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(5, 11, np.uint8)))
    with pytest.raises(ZooError, match=r"0\.\.9"):
        mnist(root=tmp_path, split="test")


def test_missing_files_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        mnist(root=tmp_path, split="train")
    message = str(info.value)
    assert str(tmp_path / "mnist") in message and str(tmp_path / "MNIST/raw") in message
    assert "--download" in message and "\n" not in message
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match="train-labels-idx1-ubyte"):
        mnist(root=tmp_path, split="train")


def test_a_bad_split_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="valid splits are train, test"):
        mnist(root=tmp_path, split="val")


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="the real MNIST files are not on this machine")
def test_the_real_mnist_matches_its_published_checksums() -> None:
    expected = {
        "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
        "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
    }
    for name, md5 in expected.items():
        assert hashlib.md5(gzip.decompress((SHARED_MNIST / name).read_bytes())).hexdigest() == md5
    train = mnist(root=SHARED_MNIST.parent, split="train")
    test = mnist(root=SHARED_MNIST.parent, split="test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
