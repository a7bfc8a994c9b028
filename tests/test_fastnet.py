"""fastnet: its whitening stem against known covariances, and a run of its full recipe (data-dependent
init, lookahead averaging, alternating flip, parameter groups, TTA) resuming bit-identical after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_datasets_cifar10 import write_cifar

from zoo_plugins.models.fastnet import fastnet, patch_covariance, whitening_weights

ROOT = Path(__file__).resolve().parents[1]


def test_whitening_filters_of_a_diagonal_covariance_are_scaled_unit_vectors():
    variances = torch.linspace(0.5, 6.0, 12, dtype=torch.float64)
    weights = whitening_weights(torch.diag(variances), channels=3, size=2, eps=0.0)
    assert weights.shape == (24, 3, 2, 2)
    filters = weights[:12].double().view(12, 12)
    order = variances.argsort(descending=True)  # largest eigenvalue first
    for row, index in zip(filters, order, strict=True):
        expected = torch.zeros(12, dtype=torch.float64)
        expected[index] = 1 / variances[index].sqrt()
        assert torch.allclose(row.abs(), expected, atol=1e-6)  # an eigenvector's sign is arbitrary
    assert torch.equal(weights[12:], -weights[:12])


def test_whitening_filters_whiten_a_known_covariance():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))
    eigenvalues = torch.logspace(-2, 1, 12, dtype=torch.float64)
    cov = q @ torch.diag(eigenvalues) @ q.T
    eps = 5e-4
    filters = whitening_weights(cov, channels=3, size=2, eps=eps)[:12].double().view(12, 12)
    # each filter's response to the patches has variance λ/(λ+eps), and the responses are uncorrelated
    expected = torch.diag((eigenvalues / (eigenvalues + eps)).flip(0))
    assert torch.allclose(filters @ cov @ filters.T, expected, atol=1e-5)


def test_patch_covariance_counts_every_patch_once():
    images = torch.randn(3, 2, 5, 4)
    rows = [
        images[n, :, i : i + 2, j : j + 2].reshape(-1) for n in range(3) for i in range(4) for j in range(3)
    ]
    patches = torch.stack(rows).double()
    expected = patches.T @ patches / len(rows)
    assert torch.allclose(patch_covariance(images, 2, chunk=2), expected)


def test_init_from_data_sets_the_stem_from_the_images():
    torch.manual_seed(0)
    model = fastnet()
    before = model.whiten.weight.clone()
    images = torch.randn(64, 3, 32, 32) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    model.init_from_data(images)
    expected = whitening_weights(patch_covariance(images, 2), channels=3)
    assert not torch.equal(model.whiten.weight, before)
    assert torch.allclose(model.whiten.weight, expected)
    assert not model.whiten.weight.requires_grad and model.whiten.bias.requires_grad


@pytest.mark.slow
def test_compiled_fastnet_under_bf16_autocast_has_finite_gradients():
    # torch.amax as the global pool gave NaN gradients here (inductor's amax backward), on CPU and CUDA
    torch.manual_seed(0)
    model = fastnet().to(memory_format=torch.channels_last)
    images = torch.randn(32, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    model.init_from_data(images)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(torch.compile(model)(images).float(), torch.arange(32) % 10)
    loss.backward()
    assert torch.isfinite(loss)
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert bad == []
    assert model.head.weight.grad.abs().sum() > 0


def test_fastnet_has_airbench94s_shape():
    model = fastnet()
    assert sum(p.numel() for p in model.parameters()) == 1_972_792
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"whiten.weight"} | {f"block{b}.norm{n}.weight" for b in (1, 2, 3) for n in (1, 2)}
    assert fastnet(num_classes=3, in_chans=1)(torch.randn(2, 1, 8, 8)).shape == (2, 3)


# Trains through the Python API with a callback that kills this very process at an exact step.
KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from zoo_core.train.trainer import Trainer
from zoo_core.train.config import TrainConfig

class KillAt:
    def on_step_end(self, trainer):
        if trainer.step == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)

cfg = TrainConfig(**{**__import__("json").loads(sys.argv[2]), "tensorboard": False, "log_every": 2})
Trainer(cfg, Path(sys.argv[1]), callbacks=[KillAt()]).fit()
"""


def python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )


@pytest.mark.slow
def test_a_fastnet_run_with_its_whole_recipe_resumes_bit_identical_after_kill_9(tmp_path):
    write_cifar(tmp_path / "data" / "cifar-10-batches-py")  # 20 train, 6 test images
    # the recipe's own settings, on 5 batches of 4 an epoch: Muon for the conv filters and SGD for the rest
    # (an OptimizerSet), the whitening bias trained for 3 of the 4 epochs, the alternating flip, bf16 and
    # channels_last, TTA at the end
    settings = {"dataset": "cifar10", "model": "fastnet", "epochs": 4, "batch_size": 4}
    settings["data_dir"] = str(tmp_path / "data")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = python("-c", KILLED_RUN, str(straight), json.dumps(settings), "-1")
    assert done.returncode == 0, done.stderr
    cut = python("-c", KILLED_RUN, str(killed), json.dumps(settings), "7")  # epoch 2, second batch
    assert cut.returncode == -signal.SIGKILL
    resumed = python("-m", "zoo_core", "train", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    for name in ("model.safetensors", "best.safetensors"):
        a, b = load_file(straight / name), load_file(killed / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    state_a = torch.load(straight / "last.pt", weights_only=True)
    state_b = torch.load(killed / "last.pt", weights_only=True)
    assert all(torch.equal(state_a["model"][k], state_b["model"][k]) for k in state_a["model"])
    saved = [state["optimizer"]["optimizers"] for state in (state_a, state_b)]
    for a, b in zip(*saved, strict=True):  # each optimizer's momentum buffers, bit for bit
        assert a["state"].keys() == b["state"].keys()
        for i in a["state"]:
            assert all(torch.equal(a["state"][i][k], b["state"][i][k]) for k in a["state"][i])
    metrics = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    assert metrics[-1]["tta"] == "flip-translate" and 0 <= metrics[-1]["tta_acc"] <= 1
    config = json.loads((killed / "config.json").read_text())
    assert config["alternate_flip"] and config["precision"] == "auto" and config["eval_every"] == 0
    assert [g.get("optimizer", "").split(":")[0] for g in config["param_groups"]] == ["", "", "muon"]
    # Muon steps the filters, SGD the rest; the whitening bias stopped after epoch 3: its group is at lr 0
    muon, sgd = state_b["optimizer"]["optimizers"]
    assert {g["ns_steps"] for g in muon["param_groups"]} == {3} and "dampening" in sgd["param_groups"][0]
    assert [g["lr"] for g in sgd["param_groups"] if g.get("train_epochs") == 3] == [0.0]
