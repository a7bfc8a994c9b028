"""evaluate(), the confusion matrix views, reading user images, and `zoo eval` / `zoo predict`."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image
from torch import nn

from zoo_core.cli import cli
from zoo_core.confusion import format_confusion, save_confusion_png
from zoo_core.data.dataset import InMemoryDataset
from zoo_core.errors import BadInputError, ZooError
from zoo_core.images import read_image, read_images
from zoo_core.train.checkpoint import save_weights
from zoo_core.train.evaluate import evaluate

# -- evaluate() ---------------------------------------------------------------------------------------------


def logit_batches(rows: list[list[float]], labels: list[int], batch_size: int = 2):
    """Batches whose inputs are already the logits (the model is nn.Identity)."""
    x = torch.tensor(rows)
    y = torch.tensor(labels)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(y), batch_size)]


def test_evaluate_counts_top1_top5_and_confusion():
    # 7 classes. Ranks of the true label: sample 0 first, 1 second, 2 sixth, 3 first, 4 seventh.
    rows = [
        [9, 1, 2, 3, 4, 5, 0],
        [1, 9, 8, 0, 0, 0, 0],
        [0, 6, 5, 4, 3, 2, 1],
        [0, 0, 0, 0, 0, 0, 9],
        [5, 4, 3, 2, 1, 0, 9],
    ]
    labels = [0, 2, 6, 6, 5]
    result = evaluate(nn.Identity(), logit_batches(rows, labels), num_classes=7)
    assert result.count == 5
    assert result.k == 5
    assert result.top1 == pytest.approx(2 / 5)
    assert result.top5 == pytest.approx(3 / 5)
    expected_loss = F.cross_entropy(torch.tensor(rows, dtype=torch.float32), torch.tensor(labels)).item()
    assert result.loss == pytest.approx(expected_loss, rel=1e-6)
    confusion = torch.zeros(7, 7, dtype=torch.int64)
    for true, pred in [(0, 0), (2, 1), (6, 1), (6, 6), (5, 6)]:
        confusion[true, pred] += 1
    assert torch.equal(result.confusion, confusion)
    per_class = result.per_class.tolist()
    assert per_class[0] == 1.0 and per_class[2] == 0.0 and per_class[6] == 0.5 and math.isnan(per_class[1])


def test_top5_uses_all_classes_when_there_are_fewer_than_five():
    result = evaluate(nn.Identity(), logit_batches([[0, 1, 2], [2, 1, 0]], [0, 0]), num_classes=3)
    assert (result.k, result.top1, result.top5) == (3, 0.5, 1.0)


def test_evaluate_restores_training_mode_and_needs_no_grad():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3)).train()
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))]
    before = model[2].running_mean.clone()
    evaluate(model, batches, num_classes=3)
    assert model.training
    assert torch.equal(model[2].running_mean, before)  # ran in eval mode: statistics untouched


def test_reduce_sees_the_packed_counts_before_they_are_read():
    batches = logit_batches([[1, 0], [1, 0], [0, 1]], [0, 1, 1])
    seen = []

    def two_ranks(stats):  # what all_reduce would do with a second rank holding the same counts
        seen.append(stats.dtype)
        stats.mul_(2)

    result = evaluate(nn.Identity(), batches, num_classes=2, reduce=two_ranks)
    assert seen == [torch.float64]
    assert result.count == 6 and result.top1 == pytest.approx(2 / 3)
    assert result.confusion.tolist() == [[2, 0], [2, 2]]


def test_evaluating_nothing_is_an_error():
    with pytest.raises(ZooError, match="empty"):
        evaluate(nn.Identity(), [], num_classes=3)


def test_to_dict_is_json_ready():
    result = evaluate(nn.Identity(), logit_batches([[1, 0, 0], [0, 1, 0]], [0, 0]), num_classes=3)
    data = json.loads(json.dumps(result.to_dict(["a", "b", "c"])))
    assert data["per_class"] == {"a": 0.5, "b": None, "c": None}
    assert data["confusion"] == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
    assert (data["count"], data["top1"], data["top5"], data["k"]) == (2, 0.5, 1.0, 3)


# -- confusion matrix views -----------------------------------------------------------------------------


def test_confusion_text_has_names_and_counts():
    text = format_confusion(torch.tensor([[5, 1], [0, 7]]), ["cat", "dog"])
    lines = text.splitlines()
    assert lines[2].split() == ["0", "cat", "5", "1"]
    assert lines[3].split() == ["1", "dog", "0", "7"]


def test_confusion_text_for_many_classes_lists_the_worst_mixups():
    confusion = torch.eye(30, dtype=torch.int64) * 10
    confusion[3, 7] = 4
    confusion[8, 2] = 6
    text = format_confusion(confusion, [f"c{i}" for i in range(30)])
    assert text.splitlines()[1:3] == ["  c8 -> c2: 6", "  c3 -> c7: 4"]


@pytest.mark.parametrize("n", [2, 10, 20, 150])
def test_confusion_png_is_a_heat_map(tmp_path, n):
    confusion = torch.eye(n, dtype=torch.int64) * 50 + 1
    path = save_confusion_png(tmp_path / "cm.png", confusion, [f"class{i}" for i in range(n)], title="t")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert min(image.size) >= n * 2
        pixels = np.asarray(image)
    assert (pixels.reshape(-1, 3) < 100).all(axis=1).any()  # the dark diagonal is there


# -- reading images -------------------------------------------------------------------------------------


def write_image(path: Path, mode: str, size: tuple[int, int], color) -> Path:
    Image.new(mode, size, color).save(path)
    return path


def test_images_of_any_mode_and_size_become_the_input_size(tmp_path):
    files = [
        write_image(tmp_path / "rgb.png", "RGB", (50, 17), (255, 0, 0)),
        write_image(tmp_path / "grey.png", "L", (5, 5), 128),
        write_image(tmp_path / "palette.gif", "P", (31, 40), 3),
        write_image(tmp_path / "cmyk.jpg", "CMYK", (64, 64), (0, 0, 0, 0)),
        write_image(tmp_path / "photo.jpg", "RGB", (300, 200), (10, 200, 30)),
    ]
    for path in files:
        assert read_image(path, (1, 28, 28)).shape == (1, 28, 28)
        rgb = read_image(path, (3, 32, 32))
        assert rgb.shape == (3, 32, 32) and rgb.dtype == torch.uint8
    assert read_image(files[0], (3, 8, 8))[:, 4, 4].tolist() == [255, 0, 0]
    assert read_image(files[0], (1, 8, 8))[0, 4, 4].item() == 76  # ITU-R 601 luma of pure red


def test_transparency_is_laid_on_white(tmp_path):
    path = write_image(tmp_path / "clear.png", "RGBA", (10, 10), (0, 0, 0, 0))
    assert read_image(path, (1, 4, 4)).unique().tolist() == [255]


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    array = np.full((6, 6), 32768, dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png", (1, 6, 6)).unique().tolist() == [128]


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("L", (20, 10), 0)
    image.paste(255, (10, 0, 20, 10))  # right half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers turn it a quarter clockwise
    image.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = read_image(tmp_path / "phone.jpg", (1, 20, 10))[0]
    assert upright[-3, 5] > 200 and upright[2, 5] < 50  # turned clockwise: the right half is now below


def test_read_images_normalizes_with_the_cards_statistics(tmp_path):
    path = write_image(tmp_path / "white.png", "L", (3, 3), 255)
    batch = read_images([path, path], input_size=(1, 4, 4), mean=(0.5,), std=(0.25,))
    assert batch.shape == (2, 1, 4, 4) and batch.dtype == torch.float32
    assert torch.allclose(batch, torch.full_like(batch, 2.0))


def test_unreadable_or_missing_images_are_bad_input_naming_the_file(tmp_path):
    (tmp_path / "fake.png").write_text("not a picture")
    with pytest.raises(BadInputError, match=r"fake\.png"):
        read_image(tmp_path / "fake.png", (3, 8, 8))
    with pytest.raises(BadInputError, match=r"No such image file: .*gone\.png"):
        read_image(tmp_path / "gone.png", (3, 8, 8))


# -- the commands ---------------------------------------------------------------------------------------

CLASSES = ["dark", "bright"]


def brightness_net(*, num_classes: int, in_chans: int = 1) -> nn.Module:
    """Mean brightness → logits; the test sets weights that call bright images 'bright'."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_chans, num_classes))


def tiny_images(*, root=None, split: str = "test", **kwargs) -> InMemoryDataset:
    """Six dark and six bright 8×8 images; two bright ones are labelled dark (the model gets them wrong)."""
    images = torch.cat([torch.full((6, 1, 8, 8), 10), torch.full((6, 1, 8, 8), 240)]).to(torch.uint8)
    labels = torch.tensor([0] * 6 + [0, 0, 1, 1, 1, 1])
    return InMemoryDataset(images, labels, CLASSES, mean=(0.5,), std=(0.25,))


def other_classes(*, root=None, split: str = "test", **kwargs) -> InMemoryDataset:
    """Same images, different class names."""
    data = tiny_images()
    return InMemoryDataset(data.images, data.labels, ["night", "day"])


@pytest.fixture
def run_dir(catalog, tmp_path) -> Path:
    """A run directory with a best.safetensors of the brightness net, and its registry entries."""
    catalog.models.register("brightness-net", brightness_net, input_size=(1, 8, 8))
    catalog.datasets.register("tiny-bright", tiny_images, num_classes=2, input_size=(1, 8, 8))
    catalog.datasets.register("tiny-other", other_classes, num_classes=2, input_size=(1, 8, 8))
    model = brightness_net(num_classes=2)
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([[-3.0], [3.0]]))
        model[2].bias.zero_()
    run = tmp_path / "run"
    save_weights(
        run / "best.safetensors",
        model,
        model_name="brightness-net",
        model_kwargs={"num_classes": 2, "in_chans": 1},
        dataset="tiny-bright",
        classes=CLASSES,
        mean=(0.5,),
        std=(0.25,),
        input_size=(1, 8, 8),
    )
    return run


def zoo(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def pictures(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "pictures"
    folder.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (250, 250, 250)).save(buffer, format="JPEG")
    (folder / "snow.jpg").write_bytes(buffer.getvalue())
    return {
        "snow": folder / "snow.jpg",
        "night": write_image(folder / "night.png", "RGBA", (3, 90), (5, 5, 5, 255)),
        "grey": write_image(folder / "grey.png", "L", (28, 28), 30),
    }


def test_predict_prints_top_classes_per_file(run_dir, pictures):
    result = zoo("predict", run_dir, pictures["snow"], pictures["night"], "--top-k", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == str(pictures["snow"]) and lines[1].split()[:2] == ["1.", "bright"]
    assert lines[2] == str(pictures["night"]) and lines[3].split()[:2] == ["1.", "dark"]
    assert len(lines) == 4


def test_predict_json_schema(run_dir, pictures):
    files = [pictures["snow"], pictures["night"], pictures["grey"]]
    result = zoo("predict", run_dir / "best.safetensors", *files, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [item["file"] for item in data] == [str(f) for f in files]
    for item in data:
        assert set(item) == {"file", "top"}
        assert [set(entry) for entry in item["top"]] == [{"index", "class", "prob"}] * 2  # clamped to 2
        probs = [entry["prob"] for entry in item["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0)
        assert all(CLASSES[entry["index"]] == entry["class"] for entry in item["top"])
    assert [item["top"][0]["class"] for item in data] == ["bright", "dark", "dark"]


def test_predict_top_k_must_be_positive(run_dir, pictures):
    result = zoo("predict", run_dir, pictures["snow"], "--top-k", "0")
    assert result.exit_code == 2


def test_predict_missing_file_is_exit_2_naming_it(run_dir, pictures):
    result = zoo("predict", run_dir, pictures["snow"], "missing.png")
    assert result.exit_code == 2
    assert "missing.png" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_predict_unreadable_file_is_exit_2_naming_it(run_dir, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    result = zoo("predict", run_dir, tmp_path / "broken.jpg")
    assert result.exit_code == 2 and "broken.jpg" in result.stderr


def test_predict_training_state_is_refused(run_dir, pictures):
    (run_dir / "last.pt").write_bytes(b"")
    result = zoo("predict", run_dir / "last.pt", pictures["snow"])
    assert result.exit_code == 2 and "run directory" in result.stderr


def test_eval_prints_metrics_and_writes_the_png(run_dir):
    result = zoo("eval", run_dir, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "top-1 83.33%" in result.output and "top-2 100.00%" in result.output
    assert "tiny-bright test: 12 images" in result.output
    table = {line.split()[0]: line.split()[1:] for line in result.output.splitlines() if line.strip()}
    assert table["dark"] == ["75.00%", "8"] and table["bright"] == ["100.00%", "4"]
    assert table["0"] == ["dark", "6", "2"] and table["1"] == ["bright", "0", "4"]
    png = run_dir / "confusion-tiny-bright-test.png"
    assert png.is_file() and f"saved to {png}" in result.output
    with Image.open(png) as image:
        assert image.format == "PNG"


def test_eval_json_and_out(run_dir, tmp_path):
    out = tmp_path / "plots" / "cm.png"
    result = zoo("eval", run_dir / "best.safetensors", "tiny-bright", "--json", "--out", out)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["top1"] == pytest.approx(10 / 12) and data["top5"] == 1.0 and data["count"] == 12
    assert data["confusion"] == [[6, 2], [0, 4]]
    assert data["per_class"] == {"dark": 0.75, "bright": 1.0}
    assert data["png"] == str(out) and out.is_file()


def test_eval_refuses_a_data_set_with_other_classes(run_dir):
    result = zoo("eval", run_dir, "tiny-other")
    assert result.exit_code == 2
    assert "classes" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_eval_on_cuda_without_cuda_is_a_one_line_error(run_dir):
    result = zoo("eval", run_dir, "--device", "cuda")
    assert result.exit_code == 2
    assert "CUDA" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_eval_asks_a_resizable_data_set_for_the_models_input_shape(run_dir, catalog):
    asked = {}

    def resizable(*, root=None, split="test", image_size=None, channels=None):
        """A data set that, like imagefolder, can resize and convert its images."""
        asked.update(image_size=image_size, channels=channels)
        return tiny_images()

    catalog.datasets.register("tiny-resizable", resizable)
    result = zoo("eval", run_dir, "tiny-resizable", "--json")
    assert result.exit_code == 0, result.output
    assert asked == {"image_size": (8, 8), "channels": 1}
