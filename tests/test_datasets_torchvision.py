"""tv/<name>: torchvision's data sets read by torchvision's own classes from small files written here in
torchvision's layouts (Fashion-MNIST IDX, CIFAR-100 pickles, SVHN .mat, EuroSAT JPEGs); listed without
importing torchvision; missing or damaged files are one line naming what torchvision expects."""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_datasets_mnist import idx_bytes

from zoo_core import create_dataset, get_catalog
from zoo_core.data.decode import decode_image
from zoo_core.errors import DataNotFoundError
from zoo_plugins.datasets import imagefolder_recipe
from zoo_plugins.datasets.torchvision_names import SETS

ROOT = Path(__file__).resolve().parents[1]
NAMES = [
    "cifar100",
    "fashionmnist",
    "kmnist",
    "qmnist",
    "emnist",
    "svhn",
    "stl10",
    "flowers102",
    "food101",
    "oxfordiiitpet",
    "gtsrb",
    "dtd",
    "eurosat",
]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_every_named_set_is_listed_with_its_metadata():
    names = get_catalog().datasets.names("tv/*")
    assert names == sorted(f"tv/{n}" for n in NAMES)
    entry = get_catalog().datasets.get("tv/cifar100")
    assert entry.meta["num_classes"] == 100 and entry.meta["input_size"] == (3, 32, 32)
    assert "CIFAR-100" in entry.summary
    assert get_catalog().datasets.get("tv/fashionmnist").meta["recipe"]["flip"] is True
    assert get_catalog().datasets.get("tv/svhn").meta["recipe"]["flip"] is False  # a mirrored digit


def test_listing_tv_imports_neither_torch_nor_torchvision():
    code = (
        "import sys; from zoo_core.cli import main; sys.argv = ['zoo', 'list', 'datasets', 'tv/*']\n"
        "try: main()\n"
        "except SystemExit: pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "tv/food101" in out.stdout
    assert "HEAVY []" in out.stdout


def write_fashionmnist(root: Path, folder: str = "FashionMNIST") -> dict:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for split, prefix, n in (("train", "train", 12), ("test", "t10k", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
        written[split] = (images, labels)
    return written


def test_fashionmnist_reads_torchvisions_raw_idx_files(tmp_path):
    written = write_fashionmnist(tmp_path)
    for split in ("train", "test"):
        data = create_dataset("tv/fashionmnist", root=tmp_path, split=split)
        images, labels = written[split]
        assert data.images.dtype == torch.uint8 and tuple(data.images.shape[1:]) == (1, 28, 28)
        assert torch.equal(data.images[:, 0], torch.from_numpy(images))
        assert data.labels.tolist() == labels.tolist()
        assert data.classes[0] == "T-shirt/top" and len(data.classes) == 10
        sized = imagefolder_recipe(len(labels))  # sized as imagefolder's
        assert data.recipe["batch_size"] == sized["batch_size"] < 128 and data.recipe["flip"] is True


def write_cifar100(root: Path, monkeypatch) -> dict:
    import torchvision.datasets as tvd

    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}
    for split, n in (("train", 10), ("test", 4)):
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 100, n).tolist()
        record = {"data": images.reshape(n, -1), "fine_labels": labels, "coarse_labels": [0] * n}
        (folder / split).write_bytes(pickle.dumps(record))
        written[split] = (images, labels)
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))
    # torchvision checks the official files' md5 before reading them: these are ours
    monkeypatch.setattr(tvd.CIFAR100, "train_list", [["train", md5(folder / "train")]])
    monkeypatch.setattr(tvd.CIFAR100, "test_list", [["test", md5(folder / "test")]])
    monkeypatch.setitem(tvd.CIFAR100.meta, "md5", md5(folder / "meta"))
    return written


def test_cifar100_reads_torchvisions_pickles(tmp_path, monkeypatch):
    written = write_cifar100(tmp_path, monkeypatch)
    data = create_dataset("tv/cifar100", root=tmp_path, split="train")
    images, labels = written["train"]
    assert torch.equal(data.images, torch.from_numpy(images))
    assert data.labels.tolist() == labels
    assert data.classes[:2] == ["c0", "c1"] and len(data.classes) == 100


def test_cifar100_failing_torchvisions_checksum_is_one_line_naming_its_files(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test", "meta"):
        (folder / name).write_bytes(b"not the official file")
    with pytest.raises(DataNotFoundError, match=r"cifar-100-python/train.*--download") as err:
        create_dataset("tv/cifar100", root=tmp_path, split="train")
    assert "\n" not in str(err.value)


def test_svhn_reads_torchvisions_mat_files(tmp_path, monkeypatch):
    scipy_io = pytest.importorskip("scipy.io")
    import torchvision.datasets as tvd

    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (32, 32, 3, 6), dtype=np.uint8)  # SVHN's own H×W×C×N
    labels = np.array([[10], [1], [2], [3], [10], [9]], dtype=np.uint8)  # 10 is the digit 0
    scipy_io.savemat(tmp_path / "test_32x32.mat", {"X": images, "y": labels})
    split_list = {**tvd.SVHN.split_list, "test": ["", "test_32x32.mat", md5(tmp_path / "test_32x32.mat")]}
    monkeypatch.setattr(tvd.SVHN, "split_list", split_list)
    data = create_dataset("tv/svhn", root=tmp_path, split="test")
    assert torch.equal(data.images, torch.from_numpy(images.transpose(3, 2, 0, 1)))
    assert data.labels.tolist() == [0, 1, 2, 3, 0, 9]


def write_eurosat(root: Path) -> dict[str, list[tuple[Path, int]]]:
    rng = np.random.default_rng(3)
    files: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    for label, name in enumerate(("Forest", "River")):
        folder = root / "eurosat" / "2750" / name
        folder.mkdir(parents=True)
        for i in range(6):
            path = folder / f"{name}_{i}.jpg"
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
            files["test" if i % 5 == 4 else "train"].append((path, label))
    return files


def test_eurosat_photos_decode_through_zoos_one_decoder(tmp_path):
    files = write_eurosat(tmp_path)
    for split in ("train", "test"):
        data = create_dataset("tv/eurosat", root=tmp_path, split=split, cache=False, workers=1)
        assert data.classes == ["Forest", "River"]
        assert data.labels.tolist() == [label for _, label in files[split]]
        for k, (path, _) in enumerate(files[split]):
            expected = torch.from_numpy(decode_image(path, (64, 64), 3)).permute(2, 0, 1)
            assert torch.equal(data.images[k], expected)
    assert len(files["test"]) == 2  # every fifth image of each class


def test_eurosat_streams_when_asked(tmp_path):
    write_eurosat(tmp_path)
    data = create_dataset("tv/eurosat", root=tmp_path, split="train", data_mode="stream", cache=False)
    image, label = data[0]
    assert image.shape == (3, 64, 64) and label == 0 and len(data) == 10


@pytest.mark.parametrize("name", NAMES)
def test_missing_files_are_one_line_naming_the_expected_files(tmp_path, name):
    with pytest.raises(DataNotFoundError) as err:
        create_dataset(f"tv/{name}", root=tmp_path, split="train")
    message = str(err.value)
    assert "\n" not in message and SETS[name].files[0] in message and "--download" in message


def test_missing_files_exit_2_on_the_command_line(tmp_path, run_zoo):
    out = run_zoo("train", "tv/kmnist", "lenet", "--data-dir", str(tmp_path), "--epochs", "1")
    assert out.returncode == 2, out.stderr
    assert "KMNIST/raw/train-images-idx3-ubyte" in out.stderr and "Traceback" not in out.stderr
