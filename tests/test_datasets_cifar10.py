"""CIFAR-10: official pickled batches through a restricted unpickler, and the same data as an image tree."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo_core.errors import BadInputError, DataNotFoundError, ZooError
from zoo_plugins.datasets.cifar10 import CLASSES, cifar10

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PER_BATCH = 4


def write_cifar(folder: Path, *, protocol: int = 2, seed: int = 0, classes: list[str] = CLASSES) -> dict:
    """Small batches in the official layout (dicts of bytes keys, uint8 rows of 3,072 values); returns the
    images and labels written, per split."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for split, names, n in (
        ("train", [f"data_batch_{i}" for i in range(1, 6)], PER_BATCH),
        ("test", ["test_batch"], 6),
    ):
        rows, labels = [], []
        for name in names:
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            ys = rng.integers(0, 10, n).tolist()
            batch = {
                b"batch_label": name.encode(),
                b"labels": ys,
                b"data": data,
                b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
            }
            (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
            rows.append(data)
            labels += ys
        written[split] = (torch.from_numpy(np.concatenate(rows).reshape(-1, 3, 32, 32)), torch.tensor(labels))
    meta = {
        b"num_cases_per_batch": PER_BATCH,
        b"label_names": [c.encode() for c in classes],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return written


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reads_the_official_batches(tmp_path: Path, protocol: int) -> None:
    written = write_cifar(tmp_path / "cifar-10-batches-py", protocol=protocol)
    for split, n in (("train", 5 * PER_BATCH), ("test", 6)):
        data = cifar10(root=tmp_path, split=split)
        assert data.images.shape == (n, 3, 32, 32) and data.images.dtype == torch.uint8
        assert data.labels.dtype == torch.int64
        assert torch.equal(data.images, written[split][0])
        assert torch.equal(data.labels, written[split][1])
        assert data.classes == CLASSES
        assert data.mean is not None and len(data.std) == 3


def test_classes_come_from_batches_meta(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(10)]
    write_cifar(tmp_path, classes=names)  # directly in the root
    assert cifar10(root=tmp_path, split="test").classes == names


def test_root_defaults_to_zoo_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py")
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    assert len(cifar10(split="test")) == 6


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    marker = tmp_path / "pwned"
    payload = {b"data": Exploit(marker), b"labels": [0]}
    (folder / "data_batch_3").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(ZooError) as info:
        cifar10(root=tmp_path, split="train")
    message = str(info.value)
    assert "data_batch_3" in message and "Refused" in message and "\n" not in message
    assert "system" in message
    assert not marker.exists()


def test_a_pickle_asking_for_builtins_eval_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    # GLOBAL builtins.eval, then REDUCE on a tuple: what `eval("...")` looks like in a pickle
    evil = b"\x80\x02cbuiltins\neval\nX\x1a\x00\x00\x00__import__('os').getcwd()\x85R."
    (folder / "batches.meta").write_bytes(evil)
    with pytest.raises(ZooError, match=r"batches\.meta.*builtins\.eval"):
        cifar10(root=tmp_path, split="test")


def test_malformed_batches_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    bad = {b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}
    (folder / "test_batch").write_bytes(pickle.dumps(bad))
    with pytest.raises(ZooError, match="3072"):
        cifar10(root=tmp_path, split="test")
    bad = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}
    (folder / "test_batch").write_bytes(pickle.dumps(bad))
    with pytest.raises(ZooError, match=r"0\.\.9"):
        cifar10(root=tmp_path, split="test")
    bad = {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}
    (folder / "test_batch").write_bytes(pickle.dumps(bad))
    with pytest.raises(ZooError, match="uint8"):
        cifar10(root=tmp_path, split="test")
    (folder / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(ZooError, match="test_batch"):
        cifar10(root=tmp_path, split="test")


def test_a_missing_batch_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataNotFoundError, match="data_batch_4"):
        cifar10(root=tmp_path, split="train")


def test_missing_data_says_where_it_looked_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        cifar10(root=tmp_path, split="train")
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "--download" in message and "cifar-10-python.tar.gz" in message and "\n" not in message


def test_a_bad_split_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="train, test"):
        cifar10(root=tmp_path, split="validation")
    with pytest.raises(BadInputError, match="format"):
        cifar10(root=tmp_path, format="hdf5")


def write_tree(root: Path, images: torch.Tensor, labels: torch.Tensor, split: str) -> None:
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / split / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")


def test_reads_the_same_data_as_an_image_tree(tmp_path: Path) -> None:
    written = write_cifar(tmp_path / "batches")
    images, labels = written["test"]
    write_tree(tmp_path / "cifar10-images", images, labels, "test")
    data = cifar10(root=tmp_path, split="test", cache=False)  # auto-detected cifar10-images/
    assert data.classes == CLASSES and data.images.shape == (6, 3, 32, 32)
    order = torch.argsort(labels, stable=True)  # a tree lists class by class, names in order
    assert torch.equal(data.labels, labels[order])
    assert torch.equal(data.images, images[order])


def test_a_tree_in_the_root_itself_and_format_images(tmp_path: Path) -> None:
    written = write_cifar(tmp_path / "cifar-10-batches-py")
    images, labels = written["test"]
    write_tree(tmp_path, images, labels, "test")
    from_pickle = cifar10(root=tmp_path, split="test")
    from_tree = cifar10(root=tmp_path, split="test", format="images", cache=False)
    order = torch.argsort(labels, stable=True)
    assert torch.equal(from_pickle.images[order], from_tree.images)


def test_a_tree_of_wrong_size_images_is_refused(tmp_path: Path) -> None:
    images = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    write_tree(tmp_path, images, torch.tensor([0, 1]), "train")
    with pytest.raises(ZooError, match="32"):
        cifar10(root=tmp_path, split="train", cache=False)


# -- the real data set (slow) -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SHARED_DATA / "prepare.py").is_file():
        pytest.skip("the real data sets are not on this machine")
    prepared = Path("/tmp/zoo-data")  # laid out once for the benchmarks; else lay it out here
    if (prepared / "cifar-10-batches-py" / "test_batch").is_file():
        return prepared
    dest = tmp_path_factory.mktemp("real-data")
    subprocess.run(
        [sys.executable, str(SHARED_DATA / "prepare.py"), str(dest)], check=True, capture_output=True
    )
    return dest


@pytest.mark.slow
def test_the_real_cifar10_has_its_original_pixels(real_data: Path) -> None:
    train = cifar10(root=real_data, split="train", format="pickle")
    test = cifar10(root=real_data, split="test", format="pickle")
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert torch.equal(train.labels.bincount(), torch.full((10,), 5000))
    assert torch.equal(test.labels.bincount(), torch.full((10,), 1000))
    assert train.classes == CLASSES
    # the published per-channel statistics of the original pixels (a JPEG copy is off by ~0.1-0.5)
    mean = train.images.double().mean((0, 2, 3))
    assert torch.allclose(mean, torch.tensor([125.307, 122.950, 113.865], dtype=torch.float64), atol=0.002)
    std = train.images.double().std((0, 2, 3))
    assert torch.allclose(std, torch.tensor([62.993, 62.089, 66.705], dtype=torch.float64), atol=0.002)
    assert torch.allclose(mean / 255, torch.tensor(train.mean, dtype=torch.float64), atol=1e-4)
