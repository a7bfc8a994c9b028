"""zoo export --format imagefolder|wds|parquet: a data set exported and read back (through imagefolder, wds
and hf) gives the same pixels, labels and classes."""

from __future__ import annotations

import json

import pytest
import torch
from test_datasets_torchvision import write_fashionmnist

from zoo_core import create_dataset
from zoo_core.data.dataset import InMemoryDataset
from zoo_core.data.export_shards import export_parquet, export_wds
from zoo_core.errors import BadInputError

pytest.importorskip("webdataset")
pytest.importorskip("datasets")
READER = {"imagefolder": "imagefolder", "wds": "wds", "parquet": "hf"}


def stacked(data) -> tuple[torch.Tensor, list[int]]:
    if hasattr(data, "images"):
        return data.images, data.labels.tolist()
    samples = [data[i] for i in range(len(data))]
    return torch.stack([x for x, _ in samples]), [y for _, y in samples]


@pytest.mark.parametrize("fmt", ["imagefolder", "wds", "parquet"])
def test_an_exported_split_reads_back_with_the_same_pixels_and_labels(tmp_path, run_zoo, fmt):
    # KMNIST for the tree: Fashion-MNIST's 'T-shirt/top' cannot be a folder name (exit 2, tested below)
    name = "kmnist" if fmt == "imagefolder" else "fashionmnist"
    written = write_fashionmnist(tmp_path / "src", "KMNIST" if fmt == "imagefolder" else "FashionMNIST")
    source = create_dataset(f"tv/{name}", root=tmp_path / "src", split="train").classes
    out = run_zoo(
        "export", f"tv/{name}", str(tmp_path / "out"), "--format", fmt, "--shard-size", "5",
        "--data-dir", str(tmp_path / "src"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for split, (images, labels) in written.items():
        options = {} if fmt == "parquet" else {"cache": False}
        back = create_dataset(READER[fmt], root=tmp_path / "out", split=split, **options)
        pixels, got = stacked(back)
        assert pixels.shape[1] == 1
        if fmt == "imagefolder":  # sorted class folders: the order is by class name, then index
            order = sorted(range(len(labels)), key=lambda i: (source[labels[i]], i))
            assert [back.classes[y] for y in got] == [source[labels[i]] for i in order]
            assert torch.equal(pixels[:, 0], torch.from_numpy(images[order]))
        else:
            assert got == labels.tolist() and back.classes == source
            assert torch.equal(pixels[:, 0], torch.from_numpy(images))


def test_a_class_name_that_cannot_be_a_folder_is_exit_2(tmp_path, run_zoo):
    write_fashionmnist(tmp_path / "src")
    out = run_zoo("export", "tv/fashionmnist", str(tmp_path / "out"), "--data-dir", str(tmp_path / "src"))
    assert out.returncode == 2 and "'T-shirt/top' cannot be a folder name" in out.stderr


def test_colour_images_through_wds_and_parquet(tmp_path):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (11, 3, 9, 13), dtype=torch.uint8, generator=generator)
    data = InMemoryDataset(images, torch.arange(11) % 4, ["a", "b", "c", "d"])
    export_wds(data, tmp_path / "w", "train", shard_size=4)
    export_parquet(data, tmp_path / "p", "train", shard_size=4)
    shards = create_dataset("wds", root=tmp_path / "w", split="train", cache=False)
    assert shards.shard_sizes == [4, 4, 3]
    index = json.loads((tmp_path / "w" / "train-shards.json").read_text())
    assert [s["nsamples"] for s in index["shardlist"]] == [4, 4, 3]
    for back in (shards, create_dataset("hf", root=tmp_path / "p", split="train")):
        pixels, labels = stacked(back)
        assert torch.equal(pixels, images) and labels == (torch.arange(11) % 4).tolist()
        assert back.classes == ["a", "b", "c", "d"]
    # and a streamed wds split exported again: shard by shard, the same samples
    export_parquet(shards, tmp_path / "again", "train", shard_size=100)
    assert torch.equal(create_dataset("hf", root=tmp_path / "again", split="train").images, images)


def test_exporting_over_existing_shards_is_refused(tmp_path):
    data = InMemoryDataset(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]), ["a", "b"])
    export_wds(data, tmp_path, "train")
    with pytest.raises(BadInputError, match="already exists"):
        export_wds(data, tmp_path, "train")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
