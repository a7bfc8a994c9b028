"""`zoo export-model`: ONNX with a dynamic batch and the model card, TorchScript, the check against PyTorch,
and every built-in model through the ONNX exporter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

import zoo_core
from zoo_core import create_model
from zoo_core.cli import cli
from zoo_core.errors import ZooError
from zoo_core.model_export import export_model, read_onnx_card, read_torchscript_card
from zoo_core.train.checkpoint import load_model, save_weights

onnxruntime = pytest.importorskip("onnxruntime")

CARD_KEYS = ("classes", "mean", "std", "input_size")


def weights_file(folder: Path, model: str = "lenet", input_size=(1, 32, 32), classes: int = 10) -> Path:
    torch.manual_seed(0)
    net = create_model(model, num_classes=classes, in_chans=input_size[0])
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so eval mode matters
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    path = folder / f"{model.replace('/', '_')}.safetensors"
    save_weights(
        path,
        net,
        model_name=model,
        model_kwargs={},
        dataset="somewhere",
        classes=[f"c{i}" for i in range(classes)],
        mean=(0.25,) * input_size[0],
        std=(0.5,) * input_size[0],
        input_size=input_size,
    )
    return path


def safetensors_card(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


def test_onnx_has_a_dynamic_batch_and_the_model_card(tmp_path):
    weights = weights_file(tmp_path)
    result = export_model(weights, tmp_path / "m.onnx", "onnx")
    assert result.max_abs_diff <= 1e-3
    card = read_onnx_card(tmp_path / "m.onnx")
    expected = safetensors_card(weights)
    assert {k: card[k] for k in CARD_KEYS} == {k: expected[k] for k in CARD_KEYS}
    assert json.loads(card["classes"])[3] == "c3" and json.loads(card["input_size"]) == [1, 32, 32]
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    model, _ = load_model(weights)
    for batch in (1, 5):  # neither the traced batch (2) nor the checked one (16)
        x = torch.randn(batch, 1, 32, 32)
        (logits,) = session.run(["logits"], {"input": x.numpy()})
        with torch.no_grad():
            assert torch.allclose(torch.from_numpy(logits), model(x), atol=1e-4)


def test_torchscript_runs_without_zoo_and_carries_the_card(tmp_path):
    weights = weights_file(tmp_path)
    result = export_model(weights, tmp_path / "m.pt", "torchscript")
    assert result.max_abs_diff <= 1e-3
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    model, _ = load_model(weights)
    x = torch.randn(7, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)
    card = read_torchscript_card(tmp_path / "m.pt")
    assert {k: card[k] for k in CARD_KEYS} == {k: safetensors_card(weights)[k] for k in CARD_KEYS}


def test_an_export_that_differs_from_pytorch_fails_and_writes_nothing(tmp_path, monkeypatch):
    from zoo_core import model_export

    weights = weights_file(tmp_path)
    real = model_export._run_torchscript
    monkeypatch.setattr(model_export, "_run_torchscript", lambda path, batch: real(path, batch) + 0.01)
    with pytest.raises(ZooError, match=r"differs from PyTorch by 0\.01"):
        export_model(weights, tmp_path / "m.pt", "torchscript")
    assert list(tmp_path.glob("m.pt*")) == [] and list(tmp_path.glob(".m.pt*")) == []


def test_cli_reports_the_difference_and_keeps_an_existing_file(tmp_path):
    weights = weights_file(tmp_path)
    run = CliRunner().invoke(
        cli, ["export-model", str(weights), "--format", "torchscript", "-o", str(tmp_path / "a.pt")]
    )
    assert run.exit_code == 0, run.output
    assert "checked with torch.jit.load on a batch of 16: max abs difference" in run.output
    again = CliRunner().invoke(
        cli, ["export-model", str(weights), "--format", "torchscript", "-o", str(tmp_path / "a.pt")]
    )
    assert again.exit_code == 2 and "already exists; pass --force" in again.output


BUILTIN = sorted(zoo_core.get_catalog().models.names(plugin="builtin.models"))


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_model_exports_to_onnx(tmp_path, name):
    entry = zoo_core.get_catalog().models.get(name)
    input_size = tuple(entry.meta.get("input_size") or (3, 32, 32))
    weights = weights_file(tmp_path, name, input_size)
    result = export_model(weights, tmp_path / "m.onnx", "onnx")
    assert result.max_abs_diff <= 1e-3
    assert json.loads(read_onnx_card(tmp_path / "m.onnx")["input_size"]) == list(input_size)
