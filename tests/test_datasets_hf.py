"""hf: Hugging Face data sets saved to disk or as parquet files, written here with the ``datasets`` package;
columns found from the features or named; in memory or streamed; images through zoo's one decoder."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo_core import create_dataset
from zoo_core.contracts import IN_MEMORY, STREAMED, dataset_kind
from zoo_core.data.decode import decode_image
from zoo_core.errors import BadInputError, DataNotFoundError, MissingExtraError

datasets = pytest.importorskip("datasets")
CLASSES = ["cat", "dog", "eel"]


def encoded(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def make_split(n: int, seed: int, *, class_label: bool = True, image_col: str = "image") -> tuple:
    rng = np.random.default_rng(seed)
    blobs = [
        encoded(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), "PNG" if i % 2 else "JPEG")
        for i in range(n)
    ]
    labels = [int(v) for v in rng.integers(0, len(CLASSES), n)]
    label_feature = datasets.ClassLabel(names=CLASSES) if class_label else datasets.Value("int64")
    features = datasets.Features(
        {image_col: datasets.Image(), "label": label_feature, "note": datasets.Value("string")}
    )
    rows = {image_col: [{"bytes": b, "path": None} for b in blobs], "label": labels, "note": ["x"] * n}
    return datasets.Dataset.from_dict(rows, features=features), blobs, labels


def expected_images(blobs: list[bytes]) -> torch.Tensor:
    return torch.stack(
        [torch.from_numpy(decode_image("x", (20, 24), 3, data=b)).permute(2, 0, 1) for b in blobs]
    )


@pytest.fixture
def saved(tmp_path) -> tuple[Path, dict]:
    train, test = make_split(9, 0), make_split(4, 1)
    datasets.DatasetDict({"train": train[0], "test": test[0]}).save_to_disk(str(tmp_path / "dd"))
    return tmp_path / "dd", {"train": train, "test": test}


def test_a_datasetdict_saved_to_disk_reads_in_memory_with_its_classlabel_names(saved):
    root, written = saved
    data = create_dataset("hf", root=root, split="train")
    assert dataset_kind(data) == IN_MEMORY
    _, blobs, labels = written["train"]
    assert data.classes == CLASSES
    assert data.labels.tolist() == labels
    assert torch.equal(data.images, expected_images(blobs))  # zoo's decoder: imagefolder's pixels


def test_a_split_streams_row_by_row_with_the_same_pixels(saved):
    root, written = saved
    data = create_dataset("hf", root=root, split="test", data_mode="stream")
    assert dataset_kind(data) == STREAMED
    _, blobs, labels = written["test"]
    assert [data[i][1] for i in range(len(data))] == labels
    assert torch.equal(torch.stack([data[i][0] for i in range(len(data))]), expected_images(blobs))
    assert data.input_size == (3, 20, 24) and len(data.mean) == 3


def test_parquet_files_read_as_the_same_split(tmp_path):
    table, blobs, labels = make_split(7, 2)
    table.select(range(4)).to_parquet(str(tmp_path / "train-00000-of-00002.parquet"))
    table.select(range(4, 7)).to_parquet(str(tmp_path / "train-00001-of-00002.parquet"))
    data = create_dataset("hf", root=tmp_path, split="train")
    assert data.classes == CLASSES and data.labels.tolist() == labels
    assert torch.equal(data.images, expected_images(blobs))


def test_columns_named_by_dataset_args_and_int_labels(tmp_path):
    table, _, labels = make_split(5, 3, class_label=False, image_col="picture")
    table = table.rename_column("label", "y")
    datasets.DatasetDict({"train": table}).save_to_disk(str(tmp_path))
    with pytest.raises(BadInputError, match="no label column"):
        create_dataset("hf", root=tmp_path, split="train")
    data = create_dataset("hf", root=tmp_path, split="train", image="picture", label="y")
    assert data.labels.tolist() == labels
    assert data.classes == [str(i) for i in range(max(labels) + 1)]


def test_an_unknown_column_or_split_is_bad_input(saved):
    root, _ = saved
    with pytest.raises(BadInputError, match="no column 'pixels'"):
        create_dataset("hf", root=root, split="train", image="pixels")
    with pytest.raises(BadInputError, match="valid splits are train, test"):
        create_dataset("hf", root=root, split="validation")


def test_a_damaged_image_is_skipped_by_name_or_fatal_under_strict(tmp_path, capfd):
    table, blobs, labels = make_split(4, 4)
    rows = table.to_dict()
    rows["image"][1] = {"bytes": blobs[1][:30], "path": None}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=table.features)}).save_to_disk(
        str(tmp_path)
    )
    data = create_dataset("hf", root=tmp_path, split="train", data_mode="stream")
    image, label = data[1]
    assert label == labels[2] and torch.equal(image, expected_images([blobs[2]])[0])
    assert "train[1]" in capfd.readouterr().err
    strict = create_dataset("hf", root=tmp_path, split="train", data_mode="stream", strict=True)
    with pytest.raises(BadInputError, match=r"train\[1\]"):
        strict[1]


def test_no_data_set_at_the_root_is_one_line(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"save_to_disk .*train-\*\.parquet"):
        create_dataset("hf", root=tmp_path, split="train")


def test_without_the_datasets_package_the_message_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'zoo-models\[hf\]'"):
        create_dataset("hf", root=tmp_path, split="train")


def test_trains_on_the_command_line_with_dataset_args(saved, run_zoo, tmp_path):
    root, _ = saved
    out = run_zoo(
        "train", "hf", "lenet", "--data-dir", str(root), "--epochs", "1", "--batch-size", "4",
        "--dataset-arg", "label=label", "--out", str(tmp_path / "run"), "--no-tensorboard", "--device", "cpu",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run" / "model.safetensors").is_file()
