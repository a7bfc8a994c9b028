"""Shared fixtures: a fresh catalog, and real third-party plugin packages installed with pip."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from offline_pip import install_offline

import zoo_core
import zoo_core.device

ROOT = Path(__file__).resolve().parents[1]


AVX2_CPU = zoo_core.device.Hardware("cpu", "AVX2", native_bf16=False, native_fp16=False)


@pytest.fixture(autouse=True)
def _an_avx2_cpu(monkeypatch):
    """Every test sees the same CPU, an AVX2 one without native bf16, whatever CI runs on: ``auto`` is
    fp32 everywhere. A test that needs another CPU fakes its own with ``fake_hardware``."""
    real = zoo_core.device.probe_hardware
    monkeypatch.setattr(
        zoo_core.device, "probe_hardware", lambda device: AVX2_CPU if str(device) == "cpu" else real(device)
    )


@pytest.fixture
def fake_hardware(monkeypatch):
    """Call with a Hardware: zoo then sees that CPU."""

    def fake(hardware):
        monkeypatch.setattr(zoo_core.device, "probe_hardware", lambda device: hardware)

    return fake


@pytest.fixture
def no_host_sync():
    """A context manager in which any wait of the host for a CUDA device raises (sync debug mode)."""
    import torch

    @contextlib.contextmanager
    def strict():
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")

    return strict


@pytest.fixture
def catalog():
    """A freshly loaded catalog of the installed plugins (reset again afterwards)."""
    zoo_core.reset_catalog()
    yield zoo_core.get_catalog()
    zoo_core.reset_catalog()


# Each test plugin is a real distribution `zoo-<x>` with module `zoo_<x>` and a `zoo.plugins` entry point.
TEST_PLUGINS = {
    "tiny": '''
        """A well-behaved third-party plugin: one model, one data set, one augmentation, one command."""
        from zoo_core import hookimpl

        @hookimpl
        def register_models(registry):
            registry.register("tinynet", "zoo_tiny.net:tinynet", summary="A tiny MLP from a third party",
                              family="tiny", input_size=(1, 8, 8), num_classes=3, default_dataset="digits",
                              params=195)

        @hookimpl
        def register_commands(cli):
            import click

            @cli.command("tiny-hello")
            def hello():
                """Say hello from the tiny plugin."""
                click.echo("hello from tiny")
    ''',
    "brokenimport": """
        raise ImportError("zoo_brokenimport needs a library that is not installed")
    """,
    "raiser": """
        from zoo_core import hookimpl

        @hookimpl
        def register_models(registry):
            registry.register("halfnet", "zoo_raiser:nothing", summary="registered before the hook fails")
            raise RuntimeError("raiser's hook exploded")
    """,
    "clash": """
        from zoo_core import hookimpl

        @hookimpl
        def register_models(registry):
            registry.register("tinynet", "zoo_clash:impostor", summary="tries to take tinynet")
            registry.register("clashnet", "zoo_clash:impostor", summary="a fine name of its own")

        def impostor(**kwargs):
            raise AssertionError("the impostor must never be built")
    """,
}
TINY_NET = '''
import torch.nn as nn


def tinynet(*, num_classes: int, in_chans: int = 1, **kwargs) -> nn.Module:
    """A tiny MLP from a third party."""
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes) if kwargs.get("lazy") else
                         nn.Linear(in_chans * 8 * 8, num_classes))
'''


def _write_package(base: Path, name: str, source: str) -> Path:
    pkg = base / f"zoo-{name}"
    module = pkg / f"zoo_{name}"
    module.mkdir(parents=True)
    (module / "__init__.py").write_text(textwrap.dedent(source))
    if name == "tiny":
        (module / "net.py").write_text(TINY_NET)
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "zoo-{name}"
        version = "1.2.3"

        [project.entry-points."zoo.plugins"]
        {name} = "zoo_{name}"

        [tool.setuptools]
        packages = ["zoo_{name}"]
        """)
    )
    return pkg


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """A directory holding the test plugins, installed there by pip (put it on PYTHONPATH to use them)."""
    base = tmp_path_factory.mktemp("plugin-src")
    target = tmp_path_factory.mktemp("plugin-site")
    packages = [str(_write_package(base, name, source)) for name, source in TEST_PLUGINS.items()]
    install_offline(*packages, target=target)
    return target


def _run_zoo(
    *args: str, site: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run the real `zoo` command line in a fresh interpreter, optionally with test plugins installed."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join([str(site), full_env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from zoo_core.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def run_zoo():
    """``run_zoo(*args, site=None, env=None)``: the real command line in a subprocess."""
    return _run_zoo
