"""The plugin author's kit: one definition of each contract (zoo_core.contracts) shared by the Trainer and the
checks, `zoo check`, zoo_core.testing, `zoo new-plugin` and the example package examples/zoo-shapes."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from offline_pip import install_offline

from zoo_core import contracts
from zoo_core.contracts import ContractError

ROOT = Path(__file__).resolve().parents[1]


class BareInMemory:
    """Exactly the in-memory contract of DESIGN.md: classes, images, labels, __len__ — no __getitem__."""

    def __init__(self, n: int, size: tuple[int, int, int] = (1, 32, 32), seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.classes = ["a", "b", "c", "d"]
        self.labels = torch.arange(n) % 4
        # class k is brighter in its own quarter of the image: learnable, and drawn without a loop
        images = torch.randint(0, 100, (n, *size), generator=g, dtype=torch.uint8)
        quarter = size[1] // 4
        for k in range(4):
            images[self.labels == k, :, k * quarter : (k + 1) * quarter] += 120
        self.images = images

    def __len__(self) -> int:
        return len(self.labels)


class Streamed(torch.utils.data.Dataset):
    """A streamed data set that counts how often it is indexed."""

    classes = ("x", "y")

    def __init__(self) -> None:
        self.reads = 0

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        self.reads += 1
        return torch.zeros(3, 5, 5, dtype=torch.uint8), i % 2


# -- the contract, defined once -----------------------------------------------------------------------------


def test_in_memory_input_size_comes_from_the_images_without_indexing():
    data = BareInMemory(8, size=(1, 12, 10))
    assert not hasattr(data, "__getitem__")
    assert contracts.dataset_input_size(data, {"input_size": (3, 32, 32)}) == (1, 12, 10)


def test_streamed_input_size_comes_from_the_data_set_then_the_metadata_then_the_first_sample():
    data = Streamed()
    assert contracts.dataset_input_size(data, {"input_size": (3, 8, 8)}) == (3, 8, 8)
    assert data.reads == 0
    assert contracts.dataset_input_size(data, {"input_size": None}) == (3, 5, 5)
    assert data.reads == 1
    data.input_size = (3, 7, 7)
    assert contracts.dataset_input_size(data, {"input_size": (3, 8, 8)}) == (3, 7, 7)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (SimpleNamespace(classes=["a"]), "neither in memory"),
        (
            SimpleNamespace(images=torch.zeros(2, 1, 4, 4), labels=torch.zeros(2, dtype=torch.int64)),
            "classes",
        ),
        (
            SimpleNamespace(
                classes=["a"], images=torch.zeros(2, 1, 4, 4), labels=torch.zeros(2, dtype=torch.int64)
            ),
            "'images' must be uint8",
        ),
        (
            SimpleNamespace(
                classes=["a"], images=torch.zeros(2, 1, 4, 4, dtype=torch.uint8), labels=torch.zeros(2)
            ),
            "'labels' must be int64",
        ),
    ],
)
def test_a_data_set_breaking_the_contract_is_refused_with_what_it_lacks(data, message):
    with pytest.raises(ContractError, match=message):
        contracts.dataset_kind(data)


def test_targets_are_labels_or_soft_rows_summing_to_1():
    x = torch.zeros(2, 3, 4, 4)
    assert contracts.check_augmented(x, (x, torch.tensor([0, 1])), 3)[2] == "labels"
    assert contracts.check_augmented(x, (x, torch.full((2, 3), 1 / 3)), 3)[2] == "soft"
    with pytest.raises(ContractError, match="sum to 1"):
        contracts.check_augmented(x, (x, torch.full((2, 3), 0.5)), 3)
    with pytest.raises(ContractError, match="changed the batch shape"):
        contracts.check_augmented(x, (x[:1], torch.tensor([0])), 3)


def test_in_memory_object_without_getitem_trains(catalog, tmp_path):
    from zoo_core.testing import check_dataset
    from zoo_core.train.checkpoint import FINAL_WEIGHTS, load_model
    from zoo_core.train.config import TrainConfig
    from zoo_core.train.trainer import Trainer

    catalog.datasets.register(
        "bare",
        lambda *, root, split: BareInMemory(64 if split == "train" else 32, seed=int(split == "test")),
        summary="The in-memory contract, nothing more",
        num_classes=4,
        input_size=None,
        splits=("train", "test"),
    )
    assert check_dataset("bare")  # the checks pass…
    cfg = TrainConfig(
        dataset="bare",
        model="lenet",
        epochs=1,
        batch_size=16,
        device="cpu",
        precision="fp32",
        tensorboard=False,
    )
    trainer = Trainer(cfg, tmp_path / "run")  # …and so does training
    assert trainer.input_size == (1, 32, 32)
    metrics = trainer.fit()
    assert metrics["epoch"] == 1 and math.isfinite(metrics["train_loss"])
    _, card = load_model(tmp_path / "run" / FINAL_WEIGHTS)
    assert card.input_size == (1, 32, 32) and card.classes == ["a", "b", "c", "d"]


# -- zoo check and zoo_core.testing on a real, pip-installed plugin ------------------------------------------

BADKIT = '''
"""Entries that break their contracts in the ways an author might, beside ones that keep them."""
from zoo_core import hookimpl


@hookimpl
def register_models(registry):
    meta = dict(family="kit", num_classes=3)
    registry.register("goodnet", "zoo_badkit.build:mlp", summary="conforming", input_size=(1, 8, 8),
                      params=195, **meta)
    registry.register("wrongparams", "zoo_badkit.build:mlp", summary="declares 100 params",
                      input_size=(1, 8, 8), params=100, **meta)
    registry.register("wrongsize", "zoo_badkit.build:sized", summary="declares 3x32x32, takes 8x8",
                      input_size=(3, 32, 32), **meta)


@hookimpl
def register_datasets(registry):
    registry.register("bare", "zoo_badkit.build:bare", summary="the in-memory contract exactly",
                      num_classes=3, input_size=(1, 8, 8), splits=("train", "test"))


@hookimpl
def register_augmentations(registry):
    registry.register("halfmix", "zoo_badkit.build:halfmix", summary="soft targets summing to 0.5",
                      level="batch", soft_targets=True)
'''
BADKIT_BUILD = """
import torch
import torch.nn.functional as F
from torch import nn


def mlp(*, num_classes, in_chans=1):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * 64, num_classes))


def sized(*, num_classes, in_chans=1):
    model = mlp(num_classes=num_classes, in_chans=in_chans)
    model.input_size = (in_chans, 8, 8)
    return model


class Bare:
    def __init__(self, n):
        self.classes = ["p", "q", "r"]
        self.labels = torch.arange(n) % 3
        self.images = (self.labels.view(n, 1, 1, 1) * 80 + torch.zeros(n, 1, 8, 8)).to(torch.uint8)

    def __len__(self):
        return len(self.labels)


def bare(*, root=None, split):
    return Bare(48 if split == "train" else 24)


def halfmix(*, num_classes):
    def aug(x, y, generator=None):
        soft = y if y.is_floating_point() else F.one_hot(y, num_classes).float()
        return x, soft * 0.5
    return aug
"""


@pytest.fixture(scope="module")
def badkit_site(tmp_path_factory) -> Path:
    pkg = tmp_path_factory.mktemp("badkit-src") / "zoo-badkit"
    (pkg / "zoo_badkit").mkdir(parents=True)
    (pkg / "zoo_badkit" / "__init__.py").write_text(BADKIT)
    (pkg / "zoo_badkit" / "build.py").write_text(BADKIT_BUILD)
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "zoo-badkit"
        version = "0.1.0"

        [project.entry-points."zoo.plugins"]
        badkit = "zoo_badkit"

        [tool.setuptools]
        packages = ["zoo_badkit"]
        """)
    )
    site = tmp_path_factory.mktemp("badkit-site")
    install_offline(pkg, target=site)
    return site


def _rows(stdout: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(entry, check) → (status, detail) from `zoo check`'s table (columns at the header's offsets)."""
    header, *lines = stdout.splitlines()
    entry_at, check_at, detail_at = (header.index(word) for word in ("entry", "check", "detail"))
    rows = {}
    for line in lines[:-1]:
        status, entry = line[:entry_at].strip(), line[entry_at:check_at].strip()
        rows[(entry, line[check_at:detail_at].strip())] = (status, line[detail_at:].strip())
    return rows


def test_zoo_check_fails_declared_metadata_naming_both_values_and_soft_targets_not_summing_to_1(
    badkit_site, run_zoo
):
    result = run_zoo("check", "badkit", site=badkit_site, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    status, detail = rows[("model wrongparams", "declared metadata")]
    assert status == "FAIL" and "declared params 100 but the built model has 195" in detail
    status, detail = rows[("model wrongsize", "declared metadata")]
    assert status == "FAIL"
    assert "declared input_size (3, 32, 32) but the built model states input_size (3, 8, 8)" in detail
    status, detail = rows[("augmentation halfmix", "shape and targets, batches 1/7/8")]
    assert status == "FAIL" and "sum to 1" in detail and "0.5000" in detail
    # the conforming entries pass every check, the bare in-memory data set included
    for (entry, check), (status, detail) in rows.items():
        if entry in ("model goodnet", "dataset bare"):
            assert status == "PASS", (entry, check, detail)
    counts = [sum(s == status for s, _ in rows.values()) for status in ("PASS", "FAIL", "SKIP")]
    assert result.stdout.splitlines()[-1] == "{} passed, {} failed, {} skipped".format(*counts)


def test_zoo_check_json_has_a_row_per_check(badkit_site, run_zoo):
    result = run_zoo("check", "badkit", "--json", site=badkit_site, timeout=600)
    rows = json.loads(result.stdout)
    assert {"entry", "check", "status", "detail", "ok"} <= set(rows[0])
    failing = {r["entry"] for r in rows if not r["ok"]}
    assert failing == {"model wrongparams", "model wrongsize", "augmentation halfmix"}


def test_the_testing_kit_raises_with_the_failed_checks_and_returns_the_passing_ones(badkit_site):
    code = textwrap.dedent("""
        from zoo_core.testing import ConformanceError, check_augmentation, check_dataset, check_model
        print(len(check_model("goodnet")), len(check_dataset("bare")))
        try:
            check_augmentation("halfmix")
        except ConformanceError as exc:
            assert isinstance(exc, AssertionError)
            print("RAISED", exc)
    """)
    env = {**os.environ, "PYTHONPATH": str(badkit_site)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    counts, raised = result.stdout.split("\n", 1)
    assert counts == "8 6"
    assert raised.startswith("RAISED 2 of 5 conformance checks failed:") and "halfmix" in raised


def test_zoo_train_takes_the_bare_in_memory_data_set(badkit_site, run_zoo, tmp_path):
    args = ("train", "bare", "goodnet", "--epochs", "1", "--batch-size", "8", "--device", "cpu")
    result = run_zoo(*args, "--out", str(tmp_path / "run"), site=badkit_site, timeout=600)
    assert result.returncode == 0, result.stderr
    [epoch] = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(epoch)["epoch"] == 1


# -- zoo new-plugin -----------------------------------------------------------------------------------------


def test_new_plugin_refuses_a_bad_name_and_an_existing_folder(run_zoo, tmp_path):
    bad = run_zoo("new-plugin", "9lives", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "must start with a letter" in bad.stderr
    assert run_zoo("new-plugin", "zoo-twice", "--dir", str(tmp_path)).returncode == 0
    again = run_zoo("new-plugin", "twice", "--dir", str(tmp_path))
    assert again.returncode == 2 and "zoo-twice already exists" in again.stderr


def _own_tests(package: Path, site: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        capture_output=True,
        text=True,
        cwd=package,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
def test_the_generated_plugin_passes_zoo_check_and_its_own_tests(run_zoo, tmp_path):
    created = run_zoo("new-plugin", "demo", "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    package = tmp_path / "zoo-demo"
    assert (package / "pyproject.toml").read_text().count('demo = "zoo_demo"') == 1
    registration = (package / "zoo_demo" / "__init__.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+torch", registration, re.MULTILINE)
    site = tmp_path / "site"
    install_offline(package, target=site)
    check = run_zoo("check", "demo", site=site, timeout=600)
    assert check.returncode == 0, check.stdout
    kinds = {entry.split()[0] for entry, _ in _rows(check.stdout)}
    assert kinds == {"model", "dataset", "augmentation", "optimizer"}  # one of each kind, each checked
    assert ("optimizer demo-lion", "fits a regression") in _rows(check.stdout)
    own = _own_tests(package, site)
    assert own.returncode == 0, own.stdout + own.stderr
    assert "4 passed" in own.stdout


# -- the example package ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_site(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("shapes-src") / "zoo-shapes"
    shutil.copytree(
        ROOT / "examples" / "zoo-shapes",
        source,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
    )
    site = tmp_path_factory.mktemp("shapes-site")
    install_offline(source, target=site)
    return site


@pytest.mark.slow
def test_the_example_package_trains_end_to_end_with_its_augmentation(shapes_site, run_zoo, tmp_path):
    listing = run_zoo("list", "--json", site=shapes_site)
    mine = {row["name"] for row in json.loads(listing.stdout) if row["plugin"] == "shapes"}
    assert mine == {"shapenet", "shapes", "rot90"}
    run = tmp_path / "run"
    args = ("train", "shapes", "shapenet", "--aug", "rot90:p=0.5", "--epochs", "1", "--device", "cpu")
    small = ("--image-size", "16", "--batch-size", "50")  # the drawing takes any size; 4× fewer pixels
    result = run_zoo(*args, *small, "--out", str(run), site=shapes_site, timeout=600)
    assert result.returncode == 0, result.stderr
    [epoch] = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epoch["train_loss"] < math.log(4)  # below the loss of a guess among four classes: it learned
    assert 0.0 <= epoch["val_acc"] <= 1.0 and math.isfinite(epoch["val_loss"])
    config = json.loads((run / "config.json").read_text())
    assert config["augs"] == ["rot90:p=0.5"] and config["dataset_kwargs"] == {"image_size": 16}


@pytest.mark.slow
def test_the_example_package_passes_zoo_check_and_its_own_tests(shapes_site, run_zoo):
    check = run_zoo("check", "shapes", site=shapes_site, timeout=600)
    assert check.returncode == 0, check.stdout
    own = _own_tests(ROOT / "examples" / "zoo-shapes", shapes_site)
    assert own.returncode == 0, own.stdout + own.stderr
