"""Model builders: every registered model trains a step; the built-in canon matches its published sizes and
works at any class count, 1 or 3 channels, 28–64 px, channels_last, bf16 autocast and torch.compile."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo_core
from zoo_core.errors import UnknownNameError

# parametrized from the registry, so every installed plugin's models are covered, not a hand list
_CATALOG = zoo_core.get_catalog()
ALL_MODELS = _CATALOG.models.names()
BUILTIN = _CATALOG.models.names(plugin="builtin.models")
DECLARED = [name for name in ALL_MODELS if "params" in _CATALOG.models.get(name).meta]

# parameter counts at 10 classes and the registered in_chans, from the papers' and reference code's tables
PUBLISHED_PARAMS = {
    "resnet18": 11_173_962,
    "resnet34": 21_282_122,
    "resnet50": 23_520_842,
    "vgg16": 14_728_266,
    "tv_resnet18": 11_173_962,
    "lenet": 61_706,
}
# at ImageNet's 1000 classes, where the reference counts are published
PUBLISHED_PARAMS_1000 = {
    "mobilenet_v1": 4_231_976,  # Howard et al. 2017, table 8: 4.2 M
    "mobilenet_v2": 3_504_872,  # torchvision.models.mobilenet_v2
}


def _meta(name: str) -> tuple[tuple[int, int, int], int]:
    meta = zoo_core.get_catalog().models.get(name).meta
    return tuple(meta.get("input_size") or (3, 32, 32)), int(meta.get("num_classes") or 10)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_and_backward_give_logits_and_gradients(name):
    torch.manual_seed(0)
    (c, h, w), _ = _meta(name)
    model = zoo_core.create_model(name, num_classes=5, in_chans=c)
    out = model(torch.randn(2, c, h, w))
    assert out.shape == (2, 5)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 4])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def _count_on_meta(name: str, **kwargs) -> int:
    # parameter shapes need no memory or initialisation: build on the meta device
    with torch.device("meta"):
        return _count(zoo_core.create_model(name, **kwargs))


@pytest.mark.parametrize("name", DECLARED)
def test_declared_params_equal_the_built_model(name):
    entry = zoo_core.get_catalog().models.get(name)
    (c, _, _), num_classes = _meta(name)
    assert _count_on_meta(name, num_classes=num_classes, in_chans=c) == entry.meta["params"]


@pytest.mark.parametrize("name", BUILTIN)
def test_registered_summary_is_the_builders_docstring_first_line(name):
    entry = zoo_core.get_catalog().models.get(name)
    assert entry.summary == entry.load().__doc__.strip().splitlines()[0]


@pytest.mark.parametrize(("name", "params"), PUBLISHED_PARAMS.items())
def test_params_match_published_counts(name, params):
    (c, _, _), _ = _meta(name)
    assert _count_on_meta(name, num_classes=10, in_chans=c) == params


@pytest.mark.parametrize(("name", "params"), PUBLISHED_PARAMS_1000.items())
def test_params_at_1000_classes_match_published_counts(name, params):
    assert _count_on_meta(name, num_classes=1000) == params


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_models_take_either_channel_count_at_28_and_64_px(name):
    (c, _, _), _ = _meta(name)
    other = 1 if c == 3 else 3  # the registered count at 32 px is covered by every other test
    model = zoo_core.create_model(name, num_classes=3, in_chans=other).eval()
    with torch.no_grad():
        for size in (28, 64):
            assert model(torch.randn(1, other, size, size)).shape == (1, 3), size


@pytest.mark.parametrize("name", BUILTIN)
def test_eval_logits_are_deterministic_and_agree_in_channels_last_and_bf16(name):
    torch.manual_seed(0)
    (c, h, w), num_classes = _meta(name)
    model = zoo_core.create_model(name, num_classes=num_classes, in_chans=c).eval()
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        first, second = model(x), model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(x)
        model = model.to(memory_format=torch.channels_last)
        cl = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(first, second)
    torch.testing.assert_close(cl, first, rtol=1e-4, atol=1e-4)
    assert bf16.dtype == torch.bfloat16 and torch.isfinite(bf16).all()
    # bf16 keeps ~3 significant digits; the logits' scale bounds the error
    assert (bf16.float() - first).abs().max() <= 0.1 * first.abs().max() + 0.05


@pytest.mark.parametrize("name", BUILTIN)
def test_state_dict_round_trips_through_safetensors(name, tmp_path):
    torch.manual_seed(0)
    (c, h, w), num_classes = _meta(name)
    source = zoo_core.create_model(name, num_classes=num_classes, in_chans=c).eval()
    save_file(source.state_dict(), tmp_path / "model.safetensors")
    with torch.device("meta"):  # an uninitialised copy, so equal logits prove the load
        target = zoo_core.create_model(name, num_classes=num_classes, in_chans=c).eval()
    target.load_state_dict(load_file(tmp_path / "model.safetensors"), assign=True)
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


@pytest.mark.slow
def test_lenet_runs_through_torch_compile():
    torch.manual_seed(0)
    model = zoo_core.create_model("lenet", num_classes=10, in_chans=1).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model)(x), model(x), rtol=1e-4, atol=1e-4)


def test_lenet_centres_28px_digits_in_its_32px_frame():
    model = zoo_core.create_model("lenet", num_classes=10, in_chans=1).eval()
    digit = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(digit), model(torch.nn.functional.pad(digit, (2, 2, 2, 2))))


def test_tv_resnet18_is_torchvision_resnet_with_cifar_stem():
    import torchvision

    model = zoo_core.create_model("tv_resnet18", num_classes=10, in_chans=1)
    assert isinstance(model, torchvision.models.ResNet)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.in_channels == 1
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_timm_bridge_builds_any_timm_model_with_classes_and_channels():
    model = zoo_core.create_model("timm/resnet10t", num_classes=7, in_chans=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)


def test_unknown_timm_name_suggests_the_close_one():
    with pytest.raises(UnknownNameError, match="timm/resnet10t"):
        zoo_core.create_model("timm/resnt10t", num_classes=7)
    from zoo_plugins.models.timm_bridge import create

    with pytest.raises(UnknownNameError, match="Did you mean 'timm/resnet10t'"):
        create("resnt10t", num_classes=7)


def test_timm_names_are_listed_only_when_asked_for(catalog):
    assert not any(name.startswith("timm/") for name in catalog.models.names())
    assert "timm/resnet10t" in catalog.models.names("timm/resnet1*")


def test_registering_builtin_models_imports_neither_torch_nor_timm():
    code = (
        "import sys, zoo_core; names = zoo_core.get_catalog().models.names();"
        "assert 'resnet18' in names and 'lenet' in names, names;"
        "heavy = [m for m in ('torch', 'torchvision', 'timm') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    env = {**os.environ, "ZOO_LOAD_PLUGINS": "builtin.models"}
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60, env=env)
