"""Weights files with their model card, training state files, atomic writes and checkpoint resolution."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import zoo_core
from zoo_core.errors import BadInputError, ZooError
from zoo_core.train import checkpoint
from zoo_core.train.checkpoint import (
    ModelCard,
    load_model,
    load_state,
    read_card,
    resolve_checkpoint,
    save_state,
    save_weights,
)

CLASSES = ["zero", "one", "two"]


def convnet(*, num_classes: int, in_chans: int = 3, width: int = 4) -> nn.Module:
    """A tiny conv net with BatchNorm (buffers) for checkpoint tests."""
    return nn.Sequential(
        nn.Conv2d(in_chans, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )


@pytest.fixture
def tiny_catalog(catalog):
    """The installed catalog plus the tiny test model ``ckpt-convnet``."""
    catalog.models.register("ckpt-convnet", convnet, input_size=(3, 8, 8))
    return catalog


def trained_convnet(width: int = 4) -> nn.Module:
    """A convnet whose BatchNorm statistics moved away from their defaults, in eval mode."""
    torch.manual_seed(0)
    model = convnet(num_classes=3, in_chans=3, width=width)
    model.train()
    model(torch.randn(16, 3, 8, 8) * 3 + 1)
    return model.eval()


def save_convnet(path: Path, model: nn.Module, **overrides) -> None:
    card = dict(
        model_name="ckpt-convnet",
        model_kwargs={"num_classes": 3, "in_chans": 3, "width": 4},
        dataset="tiny",
        classes=CLASSES,
        mean=(0.5, 0.25, 0.125),
        std=(0.2, 0.3, 0.4),
        input_size=(3, 8, 8),
    )
    save_weights(path, model, **{**card, **overrides})


def test_round_trip_gives_identical_logits(tiny_catalog, tmp_path):
    model = trained_convnet()
    save_convnet(tmp_path / "model.safetensors", model)
    loaded, card = load_model(tmp_path / "model.safetensors")
    x = torch.randn(5, 3, 8, 8)
    assert not loaded.training
    assert torch.equal(loaded(x), model(x))
    assert card.num_classes == 3


def test_lenet_round_trip_gives_identical_logits(catalog, tmp_path):
    model = zoo_core.create_model("lenet", num_classes=10, in_chans=1).eval()
    save_weights(
        tmp_path / "lenet.safetensors",
        model,
        model_name="lenet",
        model_kwargs={"num_classes": 10, "in_chans": 1},
        dataset="mnist",
        classes=[str(i) for i in range(10)],
        mean=(0.1307,),
        std=(0.3081,),
        input_size=(1, 28, 28),
    )
    loaded, _ = load_model(tmp_path / "lenet.safetensors")
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))


def test_metadata_holds_exactly_the_card(tmp_path):
    save_convnet(tmp_path / "w.safetensors", trained_convnet())
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata == {
        "zoo_version": zoo_core.__version__,
        "model": "ckpt-convnet",
        "model_kwargs": '{"in_chans": 3, "num_classes": 3, "width": 4}',
        "dataset": "tiny",
        "classes": '["zero", "one", "two"]',
        "mean": "[0.5, 0.25, 0.125]",
        "std": "[0.2, 0.3, 0.4]",
        "input_size": "[3, 8, 8]",
        "crop_pct": "1.0",  # the evaluation transform: the whole picture
    }


def test_read_card_parses_the_metadata(tmp_path):
    save_convnet(tmp_path / "w.safetensors", trained_convnet())
    assert read_card(tmp_path / "w.safetensors") == ModelCard(
        model="ckpt-convnet",
        model_kwargs={"num_classes": 3, "in_chans": 3, "width": 4},
        dataset="tiny",
        classes=CLASSES,
        mean=(0.5, 0.25, 0.125),
        std=(0.2, 0.3, 0.4),
        input_size=(3, 8, 8),
        zoo_version=zoo_core.__version__,
    )


def test_num_classes_and_channels_default_from_the_card(tiny_catalog, tmp_path):
    model = trained_convnet(width=2)
    save_convnet(tmp_path / "w.safetensors", model, model_kwargs={"width": 2})
    loaded, _ = load_model(tmp_path / "w.safetensors")
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(loaded(x), model(x))


def test_compiled_model_is_saved_without_wrapper_prefix(tiny_catalog, tmp_path):
    model = trained_convnet()
    save_convnet(tmp_path / "w.safetensors", torch.compile(model))  # compiles lazily: nothing runs here
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
    assert keys == set(model.state_dict())
    loaded, _ = load_model(tmp_path / "w.safetensors")
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(loaded(x), model(x))


def test_ddp_model_is_saved_without_module_prefix(tiny_catalog, tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        model = trained_convnet()
        save_convnet(tmp_path / "w.safetensors", nn.parallel.DistributedDataParallel(model))
    finally:
        dist.destroy_process_group()
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as handle:
        assert set(handle.keys()) == set(model.state_dict())


def test_tied_weights_are_saved(tiny_catalog, tmp_path):
    model = trained_convnet()
    model.register_buffer("alias", model[5].weight)  # shares memory with a parameter
    save_convnet(tmp_path / "w.safetensors", model)
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as handle:
        assert torch.equal(handle.get_tensor("alias"), model[5].weight)


def test_failed_weights_write_keeps_the_previous_file(tiny_catalog, tmp_path, monkeypatch):
    path = tmp_path / "best.safetensors"
    model = trained_convnet()
    save_convnet(path, model)
    before = path.read_bytes()

    def crash_midway(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_convnet(path, convnet(num_classes=3))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["best.safetensors"]  # no temporary file left behind


def test_state_round_trip(tmp_path):
    model = trained_convnet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "step": 120,
        "rng": {"torch": torch.get_rng_state()},
        "config": {"lr": 0.1, "aug": ["cutmix"], "out": None},
    }
    save_state(tmp_path / "last.pt", state)
    loaded = load_state(tmp_path / "last.pt")
    assert loaded["epoch"] == 3 and loaded["step"] == 120 and loaded["config"] == state["config"]
    assert torch.equal(loaded["rng"]["torch"], state["rng"]["torch"])
    for key, value in state["model"].items():
        assert torch.equal(loaded["model"][key], value)
    restored = torch.optim.SGD(model.parameters(), lr=0.5)
    restored.load_state_dict(loaded["optimizer"])
    assert restored.param_groups[0]["lr"] == 0.1


def test_failed_state_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_state(path, {"epoch": 1})

    def crash_midway(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 truncated")
        raise KeyboardInterrupt  # even an interrupt mid-write leaves the old state

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_state(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_state(path) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.pt"]


class _Payload:
    ran = False

    def __reduce__(self):
        return (_Payload._run, ())

    @staticmethod
    def _run():
        _Payload.ran = True


def test_state_loading_executes_no_pickled_code(tmp_path):
    torch.save({"epoch": 1, "payload": _Payload()}, tmp_path / "last.pt")
    with pytest.raises(ZooError) as info:
        load_state(tmp_path / "last.pt")
    assert not _Payload.ran
    assert "\n" not in str(info.value)


def test_corrupt_state_is_a_one_line_error(tmp_path):
    save_state(tmp_path / "last.pt", {"weights": torch.randn(100)})
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ZooError, match="damaged") as info:
        load_state(tmp_path / "last.pt")
    assert not isinstance(info.value, BadInputError)
    assert "\n" not in str(info.value) and str(tmp_path / "last.pt") in str(info.value)


def test_missing_state_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="No training state"):
        load_state(tmp_path / "last.pt")


def test_a_text_file_is_not_weights(tmp_path):
    (tmp_path / "notes.safetensors").write_text("hello, I am not a weights file" * 10)
    with pytest.raises(BadInputError, match="not a safetensors") as info:
        read_card(tmp_path / "notes.safetensors")
    assert "\n" not in str(info.value)


def test_safetensors_without_zoo_metadata_is_refused(tmp_path):
    save_file({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(BadInputError, match="not zoo weights"):
        read_card(tmp_path / "plain.safetensors")
    partial = {"model": "x", "dataset": "y"}
    save_file({"w": torch.zeros(2)}, tmp_path / "partial.safetensors", metadata=partial)
    with pytest.raises(BadInputError, match="missing metadata: zoo_version, model_kwargs, classes"):
        read_card(tmp_path / "partial.safetensors")


def test_weights_that_do_not_fit_the_model_are_a_one_line_error(tiny_catalog, tmp_path):
    save_convnet(tmp_path / "w.safetensors", trained_convnet(width=6))  # the card says width 4
    with pytest.raises(ZooError, match="does not fit model 'ckpt-convnet': wrong shape") as info:
        load_model(tmp_path / "w.safetensors")
    assert "\n" not in str(info.value)


def test_weights_of_an_unknown_model_name_it(catalog, tmp_path):
    save_convnet(tmp_path / "w.safetensors", trained_convnet(), model_name="not-installed-net")
    with pytest.raises(BadInputError, match="needs model 'not-installed-net'"):
        load_model(tmp_path / "w.safetensors")


def test_resolve_prefers_best_then_final_weights(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert resolve_checkpoint(tmp_path) == tmp_path / "model.safetensors"
    (tmp_path / "best.safetensors").write_bytes(b"")
    assert resolve_checkpoint(tmp_path) == tmp_path / "best.safetensors"
    assert resolve_checkpoint(tmp_path / "model.safetensors") == tmp_path / "model.safetensors"


def test_resolve_explains_a_training_state(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"training state .* pass its run directory or a \.safetensors"):
        resolve_checkpoint(tmp_path / "last.pt")


def test_resolve_refuses_missing_paths_and_empty_runs(tmp_path):
    with pytest.raises(BadInputError, match="No such checkpoint"):
        resolve_checkpoint(tmp_path / "nope")
    with pytest.raises(BadInputError, match=r"holds no best\.safetensors or model\.safetensors"):
        resolve_checkpoint(tmp_path)


def test_card_round_trips_through_json_friendly_values(tmp_path):
    save_convnet(tmp_path / "w.safetensors", trained_convnet(), classes=["ä b", 'q"uote', "x"])
    card = read_card(tmp_path / "w.safetensors")
    assert card.classes == ["ä b", 'q"uote', "x"]
    assert json.loads(json.dumps(card.model_kwargs)) == card.model_kwargs


def test_stale_temporary_files_of_a_dead_writer_are_removed_and_a_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from zoo_core.train.checkpoint import remove_stale_temp_files

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".last.pt.{dead_pid}.0a1b2c3d.tmp"
    live = tmp_path / f".best.safetensors.{os.getpid()}.deadbeef.tmp"
    other = tmp_path / ".notes.tmp"  # not one of ours: left alone
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()
