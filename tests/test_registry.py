"""The Registry contract of DESIGN.md: registration, lookup, patterns, suggestions, rollback."""

from __future__ import annotations

import pytest

from zoo_core.errors import DuplicateNameError, UnknownNameError, ZooError
from zoo_core.registry import Registry, natural_key


def make(*names: str) -> Registry:
    registry = Registry("model")
    for name in names:
        registry.register(name, lambda **kw: kw, summary=f"the {name}")
    return registry


def test_register_and_build_with_kwargs():
    registry = make("net")
    assert registry.build("net", num_classes=3) == {"num_classes": 3}
    assert registry.get("net").summary == "the net"


def test_register_as_decorator_takes_summary_from_docstring():
    registry = Registry("model")

    @registry.register("decorated", family="demo")
    def decorated(**kwargs):
        """First line is the summary.

        More text."""
        return "built"

    entry = registry.get("decorated")
    assert entry.summary == "First line is the summary."
    assert entry.meta == {"family": "demo"}
    assert registry.build("decorated") == "built"


def test_string_builder_is_resolved_only_when_built():
    registry = Registry("model")
    registry.register("path", "json:dumps", summary="lazy")
    assert registry.get("path").builder == "json:dumps"
    assert registry.build("path", obj=[1]) == "[1]"


def test_lookup_is_case_insensitive_and_follows_aliases():
    registry = Registry("model")
    registry.register("resnet18", lambda **kw: "r18", aliases=("rn18",))
    assert registry.get("ResNet18").name == "resnet18"
    assert registry.get("rn18").name == "resnet18"
    assert "RN18" in registry and "resnet19" not in registry


@pytest.mark.parametrize("bad", ["ResNet", "_x", "a b", "", "a/b"])
def test_invalid_names_are_refused(bad):
    with pytest.raises(ValueError, match="Invalid model name"):
        Registry("model").register(bad, lambda **kw: None)


def test_unknown_name_suggests_close_names():
    registry = make("resnet18", "resnet34", "vgg11")
    with pytest.raises(UnknownNameError) as info:
        registry.get("resnt18")
    assert str(info.value) == "Unknown model 'resnt18'. Did you mean 'resnet18'? (see: zoo list models)"
    assert isinstance(info.value, LookupError) and isinstance(info.value, ZooError)


def test_unknown_name_mentions_failed_plugins():
    registry = make("a")
    registry.failed_plugins.append("broken")
    with pytest.raises(UnknownNameError, match="plugin\\(s\\) failed to load: broken"):
        registry.get("zzz")


def test_names_natural_sort_patterns_and_plugin_filter():
    registry = Registry("model")
    for name in ["vgg19", "vgg11", "vgg9", "resnet50", "resnet18"]:
        registry.register(name, lambda **kw: None)
    with registry.owned_by("other"):
        registry.register("mine", lambda **kw: None)
    assert registry.names() == ["mine", "resnet18", "resnet50", "vgg9", "vgg11", "vgg19"]
    assert registry.names("vgg*") == ["vgg9", "vgg11", "vgg19"]
    assert registry.names(["VGG1*", "resnet*"], exclude="resnet5*") == ["resnet18", "vgg11", "vgg19"]
    assert registry.names(plugin="other") == ["mine"]
    assert len(registry) == 6 and next(iter(registry)) == "mine"


def test_natural_key_orders_numbers_numerically():
    assert sorted(["b10", "b2", "a"], key=natural_key) == ["a", "b2", "b10"]


def test_duplicate_from_the_api_raises_naming_both():
    registry = make("net")
    with pytest.raises(DuplicateNameError, match="'net'"):
        registry.register("net", lambda **kw: None)


def test_duplicate_from_a_plugin_is_recorded_and_the_first_kept():
    registry = Registry("model")
    with registry.owned_by("first"):
        registry.register("net", lambda **kw: "first")
    with registry.owned_by("second"):
        registry.register("net", lambda **kw: "second")
        registry.register("other", lambda **kw: "other")
    assert registry.build("net") == "first"
    assert registry.build("other") == "other"
    [(plugin, message)] = registry.conflicts
    assert plugin == "second" and "'second'" in message and "'first'" in message


def test_failing_plugin_block_rolls_back_its_entries():
    registry = make("keep")
    with pytest.raises(RuntimeError), registry.owned_by("bad"):
        registry.register("partial", lambda **kw: None, aliases=("part",))
        raise RuntimeError("boom")
    assert registry.names() == ["keep"]
    assert "part" not in registry


def test_namespace_names_are_listed_only_when_asked_and_build_by_name():
    registry = make("local")
    calls = []

    def lister():
        calls.append(1)
        return ["alpha", "beta"]

    registry.register_namespace("ext", lambda name, **kw: (name, kw), lister=lister, summary="external")
    assert registry.names() == ["local"] and not calls
    assert registry.names("ext/*") == ["ext/alpha", "ext/beta"]
    assert registry.build("ext/beta", num_classes=2) == ("beta", {"num_classes": 2})
    with pytest.raises(UnknownNameError, match="Did you mean 'ext/alpha'"):
        registry.get("ext/alpah")
