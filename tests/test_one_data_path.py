"""One image, one set of pixels: the hostile-image set through training (held in memory and streamed),
``zoo eval``'s view and ``zoo predict``, and a user's tree of EXIF-turned photos and cut-outs whose class
is what a viewer sees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hostile import DAMAGED, exif_jpeg, write_hostile_set
from PIL import Image

from zoo_core.cli import cli
from zoo_core.data.loader import make_loader
from zoo_core.errors import ZooError
from zoo_core.images import read_image, read_images
from zoo_plugins.datasets.imagefolder import imagefolder


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ZOO_CACHE", str(folder))
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The hostile set as one class of a train and a test split (the damaged files among them)."""
    root = tmp_path / "tree"
    write_hostile_set(root / "train" / "all")
    shutil.copytree(root / "train", root / "test")
    return root


@pytest.mark.parametrize("crop_pct", [1.0, 0.875])
def test_memory_stream_eval_and_predict_see_the_same_pixels(tree: Path, crop_pct: float) -> None:
    options = dict(root=tree, split="test", image_size=(32, 40), channels=3, crop_pct=crop_pct)
    with pytest.warns(UserWarning, match="Skipped 3 unreadable image") as caught:
        held = imagefolder(**options)
    assert all(name in str(caught[0].message) for name in DAMAGED)
    streamed = imagefolder(**options, data_mode="stream", cache=False)
    good = [p for p in streamed.paths if Path(p).name not in DAMAGED]
    assert len(held) == len(good) == 18
    for k, name in enumerate(good):
        image, _ = streamed[streamed.paths.index(name)]
        assert torch.equal(image, held.images[k]), name
    view = torch.cat([x for x, _ in make_loader(held, batch_size=8, device="cpu", train=False)])
    files = [tree / "test" / name for name in good]
    predicted = read_images(files, input_size=(3, 32, 40), mean=held.mean, std=held.std, crop_pct=crop_pct)
    assert view.shape == (18, 3, 32, 40) and torch.equal(predicted, view)


def test_a_damaged_file_is_fatal_under_strict_and_bad_input_for_predict(tree: Path) -> None:
    with pytest.raises(ZooError, match=r"Cannot read image .*(empty|not-an-image|truncated)"):
        imagefolder(root=tree, split="test", image_size=32, strict=True)
    for name in DAMAGED:
        with pytest.raises(ZooError, match=f"Cannot read image {tree}/test/all/{name} ") as caught:
            read_image(tree / "test" / "all" / name, (3, 32, 32))
        assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_streamed_training_of_the_hostile_set_names_what_it_skips(tree: Path, capfd) -> None:
    streamed = imagefolder(
        root=tree, split="train", image_size=32, channels=3, data_mode="stream", cache=False
    )
    loader = make_loader(streamed, batch_size=7, device="cpu", train=True, num_workers=1, shuffle=False)
    assert sum(len(x) for x, _ in loader) == 21  # every slot filled: a damaged file's stand-in takes it
    err = capfd.readouterr().err
    assert all(f"skipped unreadable image {tree}/train/all/{name} (" in err for name in DAMAGED)


def viewer_tree(root: Path, per_class: int = 12) -> None:
    """Two classes a person tells apart at a glance: "red-top" (red above blue) and "blue-top" (blue above
    red). Half of each class's photos are stored upside down with EXIF orientation 3, so a reader that
    ignores EXIF sees half of each class as the other; a quarter are cut-outs (the lower half transparent,
    a viewer shows white there) whose hidden pixels are noise."""
    red_top = np.empty((48, 48, 3), np.uint8)
    red_top[:24], red_top[24:] = (220, 30, 30), (40, 40, 210)
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 2)):
        for name, picture in (("red-top", red_top), ("blue-top", red_top[::-1])):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(count):
                noisy = np.clip(picture.astype(int) + rng.integers(-20, 21, picture.shape), 0, 255)
                noisy = noisy.astype(np.uint8)
                if k % 2:
                    (folder / f"{k}.jpg").write_bytes(exif_jpeg(noisy, 3))
                elif k % 4:
                    (folder / f"{k}.jpg").write_bytes(exif_jpeg(noisy, 1))
                else:
                    rgba = np.dstack([noisy, np.full((48, 48), 255, np.uint8)])
                    rgba[24:] = np.dstack([rng.integers(0, 256, (24, 48, 3)), np.zeros((24, 48))])
                    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(folder / f"{k}.png")


@pytest.mark.slow
def test_photos_whose_class_is_what_a_viewer_sees_train_and_eval_and_predict_agree(tmp_path: Path) -> None:
    root = tmp_path / "viewer"
    viewer_tree(root)
    run = tmp_path / "run"
    runner = CliRunner()
    train = [
        "train", "imagefolder", "lenet", "--data-dir", str(root), "--image-size", "32", "--epochs", "6",
        "--batch-size", "8", "--lr", "0.02", "--out", str(run), "--no-tensorboard", "--seed", "0",
    ]  # fmt: skip
    result = runner.invoke(cli, train)
    assert result.exit_code == 0, result.output
    evaluated = runner.invoke(cli, ["eval", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output)
    assert report["top1"] >= 0.9
    files = sorted((root / "test").rglob("*.*"))
    predicted = runner.invoke(cli, ["predict", str(run), *map(str, files), "--json", "--top-k", "1"])
    assert predicted.exit_code == 0, predicted.output
    answers = json.loads(predicted.output)
    right = [a["top"][0]["class"] == Path(a["file"]).parent.name for a in answers]
    assert sum(right) / len(right) == pytest.approx(report["top1"])
