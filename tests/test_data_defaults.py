"""Defaults that fit a user's own images: the imagefolder recipe sized to the set, a batch no larger than
the set, a size for photographs of mixed sizes; and `zoo eval` on the run's own data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo_core.train.config import TrainConfig
from zoo_core.train.data_recipe import fitting_batch, refine_for_data
from zoo_plugins.datasets import IMAGEFOLDER_RECIPE, MAX_EPOCHS, MIN_STEPS, SMALL_SET, imagefolder_recipe
from zoo_plugins.datasets.imagefolder import AUTO_SIZE_CAP, imagefolder

ROOT = Path(__file__).resolve().parents[1]


def photo_tree(root: Path, sizes: dict[str, list[tuple[int, int]]], classes: int = 2) -> Path:
    """A tree of noise photos; ``sizes[split]`` lists (width, height) per image, classes in turn."""
    rng = np.random.default_rng(0)
    for split, wh in sizes.items():
        for i, (w, h) in enumerate(wh):
            folder = root / split / f"class{i % classes}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            pixels[..., 0] = 40 + 160 * (i % classes)  # the class is in the red channel: learnable
            Image.fromarray(pixels).save(folder / f"{i:03d}.jpg", quality=95)
    return root


def zoo(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**clean, "OMP_NUM_THREADS": "1", **(env or {})},
        timeout=300,
    )


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- the recipe ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("images", [20, 80, 300, 1500, 4000])
def test_a_small_set_gets_a_smaller_batch_and_enough_steps(images):
    recipe = imagefolder_recipe(images)
    steps = images // recipe["batch_size"]
    assert 1 <= recipe["batch_size"] <= min(64, images)
    assert steps * recipe["epochs"] >= MIN_STEPS or recipe["epochs"] == MAX_EPOCHS
    assert steps >= 32 or recipe["batch_size"] == 16  # as many steps an epoch as the set allows


def test_a_large_set_keeps_the_registered_recipe():
    assert imagefolder_recipe(SMALL_SET) == IMAGEFOLDER_RECIPE == imagefolder_recipe(50_000)


def test_the_data_set_recipe_fills_only_what_the_user_left_unset(capsys):
    class Built:
        def __init__(self) -> None:
            self.recipe = {"batch_size": 16, "epochs": 56, "lr": 3e-3}

        def __len__(self) -> int:
            return 300

    requested = TrainConfig(dataset="imagefolder", model="lenet", lr=0.01)
    cfg = requested.with_recipe(IMAGEFOLDER_RECIPE)
    refined = refine_for_data(requested, cfg, Built())
    assert (refined.batch_size, refined.epochs, refined.lr) == (16, 56, 0.01)
    err = capsys.readouterr().err
    assert err == (
        "imagefolder: recipe sized to 300 training images: batch_size 16, epochs 56 (zoo info imagefolder)\n"
    )


def test_a_set_smaller_than_the_batch_trains_with_a_smaller_one(capsys):
    class Built:
        def __len__(self) -> int:
            return 80

    requested = TrainConfig(dataset="x", model="lenet", batch_size=128)
    refined = refine_for_data(requested, requested.with_recipe({}), Built(), world_size=2)
    assert refined.batch_size == 64
    assert capsys.readouterr().err == (
        "batch 128 is larger than the training set (80 images): training with batch 64\n"
    )
    assert fitting_batch(80, 1) == 64 and fitting_batch(5, 2) == 4 and fitting_batch(1, 1) == 1


# -- image sizes ------------------------------------------------------------------------------------------


def test_mixed_sizes_get_the_median_size_with_the_shorter_side_capped(tmp_path, capsys):
    sizes = {
        "train": [(100, 80), (120, 90), (300, 200), (90, 70), (110, 85)],
        "test": [(40, 40), (50, 50)],  # one size in this split alone: still resized like the train split
    }
    tree = photo_tree(tmp_path / "t", sizes)
    train, test = imagefolder(root=tree, split="train"), imagefolder(root=tree, split="test")
    # medians over both splits: height 80, width 100; shorter side 80 → 64 (scale 0.8)
    assert train.input_size == test.input_size == (3, AUTO_SIZE_CAP, 80)
    err = capsys.readouterr().err
    assert err.count("have 7 different sizes; all are resized to 80×64") == 1  # said once, not per split
    again = imagefolder(root=tree, split="train", image_size=(64, 80))  # what zoo eval asks for
    assert (again.images == train.images).all()


def test_images_of_one_size_stay_as_they_are(tmp_path, capsys):
    tree = photo_tree(tmp_path / "t", {"train": [(30, 20)] * 4, "test": [(30, 20)] * 2})
    assert imagefolder(root=tree, split="train").input_size == (3, 20, 30)
    assert capsys.readouterr().err == ""


def test_info_says_when_to_turn_flips_off(run_zoo):
    done = run_zoo("info", "imagefolder")
    assert done.returncode == 0
    assert "--no-flip for digits" in " ".join(done.stdout.split())


# -- end to end -------------------------------------------------------------------------------------------


def test_a_hundred_mixed_photos_train_with_no_option_then_eval_finds_their_data(tmp_path):
    rng = np.random.default_rng(1)
    sizes = {
        "train": [tuple(int(v) for v in rng.integers(40, 90, 2)) for _ in range(80)],
        "test": [tuple(int(v) for v in rng.integers(40, 90, 2)) for _ in range(20)],
    }
    tree = photo_tree(tmp_path / "photos", sizes)
    run = tmp_path / "run"
    done = zoo(
        "train", "imagefolder", "lenet", "--data-dir", str(tree), "--out", str(run), "--epochs", "2",
        "--batch-size", "128", "--no-tensorboard", env={"ZOO_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "all are resized to" in done.stderr
    assert "batch 128 is larger than the training set (80 images): training with batch 64" in done.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["batch_size"] == 64 and config["data_dir"] == str(tree)

    # from another folder, with no data root in the environment: the run says where its data are
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = zoo("eval", str(run), cwd=elsewhere, env={"ZOO_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"Evaluating {run}/best.safetensors (lenet) on imagefolder test from {tree} "
        f"(the run's data, {run}/config.json)"
    )
    done = zoo("eval", str(run), "--json", cwd=elsewhere, env={"ZOO_CACHE": str(tmp_path / "cache")})
    result = json.loads(done.stdout)
    assert result["data_dir"] == str(tree) and result["data_source"].startswith("the run's data")
    best = max(json.loads(line)["val_acc"] for line in (run / "metrics.jsonl").read_text().splitlines())
    assert result["count"] == 20 and result["top1"] == pytest.approx(best)


def test_eval_dataset_and_data_dir_override_the_run(tmp_path):
    tree = photo_tree(tmp_path / "a", {"train": [(24, 24)] * 8, "test": [(24, 24)] * 4})
    other = photo_tree(tmp_path / "b", {"train": [(24, 24)] * 2, "test": [(24, 24)] * 6})
    run = tmp_path / "run"
    done = zoo(
        "train", "imagefolder", "lenet", "--data-dir", str(tree), "--out", str(run), "--epochs", "1",
        "--no-tensorboard", env={"ZOO_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = zoo("eval", str(run), "--data-dir", str(other), env={"ZOO_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert f"on imagefolder test from {other} (--data-dir given)" in done.stdout.splitlines()[0]
    assert "imagefolder test: 6 images" in done.stdout
