"""`zoo train --init SOURCE` and `--freeze-backbone`: reading weights from every kind of source, matching
by name and shape, re-making the head, the one-line report, a linear probe that leaves the backbone alone."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from zoo_core import create_model
from zoo_core.errors import BadInputError
from zoo_core.train.checkpoint import save_weights
from zoo_core.train.init_weights import (
    find_head,
    freeze_backbone,
    load_matching,
    prepare_model,
    read_source,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--batch-size", "64", "--no-tensorboard"]


def lenet(num_classes: int = 10, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("lenet", num_classes=num_classes, in_chans=1)


def zoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def test_same_architecture_loads_every_tensor():
    source, target = lenet(seed=1), lenet(seed=2)
    report = load_matching(target, source.state_dict(), source="s")
    assert len(report.loaded) == len(source.state_dict()) and not report.remade and not report.unused
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor)
    assert report.line() == f"--init s: {len(report.loaded)} tensors loaded, 0 re-made, 0 unused"


def test_other_class_count_remakes_only_the_head():
    source, target = lenet(10, seed=1), lenet(3, seed=2)
    fresh_head = target.classifier[5].weight.clone()
    report = load_matching(target, source.state_dict(), source="s")
    assert report.remade == ["classifier.5.weight", "classifier.5.bias"]
    assert torch.equal(target.classifier[5].weight, fresh_head)  # the new model's own initialisation
    assert torch.equal(target.features[0].weight, source.features[0].weight)
    assert "2 re-made (classifier.5.weight, classifier.5.bias)" in report.line()


def test_unknown_names_are_unused_and_nothing_matching_is_an_error():
    state = {**lenet().state_dict(), "extra.weight": torch.zeros(3)}
    report = load_matching(lenet(), state, source="s")
    assert report.unused == ["extra.weight"]
    with pytest.raises(BadInputError, match="none of its 1 tensors fits"):
        load_matching(lenet(), {"other.weight": torch.zeros(2)}, source="s")


def test_a_run_directory_and_a_zoo_safetensors_are_sources(tmp_path):
    model = lenet(seed=3)
    card = dict(
        model_name="lenet",
        model_kwargs={},
        dataset="digits",
        classes=[str(i) for i in range(10)],
        mean=(0.5,),
        std=(0.5,),
        input_size=(1, 32, 32),
    )
    save_weights(tmp_path / "run" / "best.safetensors", model, **card)
    for source in (tmp_path / "run", tmp_path / "run" / "best.safetensors"):
        state = read_source(str(source), model_name="lenet", model_kwargs={})
        assert torch.equal(state["features.0.weight"], model.features[0].weight)


def test_plain_state_dicts_load_with_their_wrapper_prefixes_removed(tmp_path):
    model = lenet(seed=4)
    wrapped = {f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": wrapped, "epoch": 3}, tmp_path / "ckpt.pth")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "plain.safetensors")
    for name in ("ckpt.pth", "plain.safetensors"):
        state = read_source(str(tmp_path / name), model_name="lenet", model_kwargs={})
        assert set(state) == set(model.state_dict())


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_is_not_weights_is_refused_without_running_it(tmp_path):
    with (tmp_path / "evil.pt").open("wb") as f:
        pickle.dump({"model": Payload()}, f)
    with pytest.raises(BadInputError, match="weights-only"):
        read_source(str(tmp_path / "evil.pt"), model_name="lenet", model_kwargs={})


def test_missing_source_and_unknown_suffix_are_one_line_errors(tmp_path):
    with pytest.raises(BadInputError, match="no such run directory or weights file"):
        read_source(str(tmp_path / "nope"), model_name="lenet", model_kwargs={})
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(BadInputError, match="expected a run directory"):
        read_source(str(tmp_path / "w.txt"), model_name="lenet", model_kwargs={})


def test_pretrained_for_a_model_without_weights_says_so(catalog):
    with pytest.raises(BadInputError, match="'lenet' has no pretrained weights"):
        read_source("pretrained", model_name="lenet", model_kwargs={"num_classes": 3, "in_chans": 1})


def test_pretrained_asks_the_builder_for_its_published_model(catalog):
    published = lenet(10, seed=7)
    calls = []

    def builder(*, num_classes=10, in_chans=1, pretrained=False):
        calls.append((num_classes, in_chans, pretrained))
        return published if pretrained else lenet(num_classes, seed=8)

    catalog.models.register("weightsnet", builder, summary="a builder with published weights")
    state = read_source("pretrained", model_name="weightsnet", model_kwargs={"num_classes": 4, "in_chans": 1})
    assert calls == [(None, 1, True)]  # num_classes=None: the head the weights were published with
    target = lenet(4, seed=9)
    report = load_matching(target, state, source="pretrained")
    assert report.remade == ["classifier.5.weight", "classifier.5.bias"]
    assert torch.equal(target.features[3].weight, published.features[3].weight)


def test_the_head_is_found_for_zoo_and_timm_models():
    assert find_head(lenet(7), 7) is not None and find_head(lenet(7), 7).out_features == 7
    resnet = create_model("resnet18", num_classes=5)
    assert find_head(resnet, 5) is resnet.head[-1]
    timm_model = create_model("timm/resnet10t", num_classes=5)
    assert find_head(timm_model, 5) is timm_model.get_classifier()


def test_a_frozen_backbone_keeps_its_weights_and_its_norm_statistics():
    model = create_model("resnet18", num_classes=3)
    trainable = freeze_backbone(model, 3)
    assert trainable == ["head.2.weight", "head.2.bias"]
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    model.train()
    model(torch.randn(4, 3, 32, 32) * 5 + 2).sum().backward()
    assert torch.equal(bn.running_mean, before)
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)


def test_resuming_freezes_again_but_does_not_load(tmp_path):
    class Cfg:
        model, init, freeze_backbone = "lenet", str(tmp_path / "missing.safetensors"), True

    model = lenet(3)
    assert prepare_model(model, Cfg(), model_kwargs={"num_classes": 3}, resuming=True, announce=False) is None
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "classifier.5.weight",
        "classifier.5.bias",
    ]


def test_train_init_from_a_run_with_a_frozen_backbone(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    done = zoo("train", "digits", "lenet", "--epochs", "1", "--out", str(first), *FAST)
    assert done.returncode == 0, done.stderr
    done = zoo(
        "train", "digits", "lenet", "--epochs", "1", "--out", str(second), *FAST,
        "--init", str(first), "--freeze-backbone", "--schedule", "constant",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--init " + str(first) + ": 10 tensors loaded, 0 re-made, 0 unused" in done.stderr
    assert "--freeze-backbone: training classifier.5.weight, classifier.5.bias only" in done.stderr
    before, after = load_file(str(first / "best.safetensors")), load_file(str(second / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("classifier.5."))
    assert not torch.equal(before["classifier.5.weight"], after["classifier.5.weight"])
    config = json.loads((second / "config.json").read_text())
    assert config["init"] == str(first) and config["freeze_backbone"] is True

    # a resumed linear probe builds its optimizer over the same (head) parameters as the saved one
    config["epochs"] = 2  # a constant schedule does not depend on the number of steps
    (second / "config.json").write_text(json.dumps(config))
    done = zoo("train", "--resume", str(second))
    assert done.returncode == 0, done.stderr
    assert "--init" not in done.stderr.replace("--resume", "")
    final = load_file(str(second / "model.safetensors"))
    assert torch.equal(final["features.0.weight"], before["features.0.weight"])


def test_train_init_pretrained_without_weights_is_one_line(tmp_path):
    done = zoo(
        "train",
        "digits",
        "lenet",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "r"),
        *FAST,
        "--init",
        "pretrained",
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Error: --init pretrained: model 'lenet' has no pretrained weights (its builder takes no "
        "'pretrained'); start from a run or a weights file instead (--init RUN_DIR|FILE)"
    ]
