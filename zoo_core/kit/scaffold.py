"""``zoo new-plugin NAME``: a plugin package that passes ``zoo check`` and its own tests as generated.

The skeleton holds one of each kind of entry — a small CNN, a procedurally drawn data set (stripes, two
classes: nothing to download), a batch augmentation (Gaussian noise) and an optimizer (Lion, Chen et al.
2023: the sign of an interpolated momentum) — so an author edits working code rather than a blank page.
Names follow DESIGN.md: distribution ``zoo-<x>``, module ``zoo_<x>``, entry point ``<x>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from zoo_core.errors import BadInputError

_NAME = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True)
class PluginNames:
    """The names of one plugin, all derived from its entry-point name ``x``."""

    entry_point: str  # x: `zoo check x`, `zoo plugins`
    distribution: str  # zoo-x: `pip install zoo-x`
    module: str  # zoo_x: `import zoo_x`

    @property
    def prefix(self) -> str:  # the registered names: x-net, x-stripes, x-noise
        return self.entry_point.replace("_", "-")


def plugin_names(name: str) -> PluginNames:
    """``foo``, ``zoo-foo`` or ``zoo_foo`` → entry point ``foo``, distribution ``zoo-foo``, module
    ``zoo_foo``."""
    x = name.strip().lower()
    for prefix in ("zoo-", "zoo_"):
        if x.startswith(prefix):
            x = x[len(prefix) :]
    if not _NAME.fullmatch(x) or x.endswith(("-", "_")):
        raise BadInputError(
            f"Plugin name {name!r} must start with a letter and hold only a-z, 0-9, '-' and '_' (e.g. 'foo')"
        )
    if x.startswith("builtin"):
        raise BadInputError(f"Plugin name {name!r} is reserved for zoo's own plugins")
    return PluginNames(x, "zoo-" + x.replace("_", "-"), "zoo_" + x.replace("-", "_"))


def new_plugin(name: str, directory: str | Path = ".") -> Path:
    """Write the package ``<directory>/zoo-<x>/`` and return its path; an existing path is refused."""
    names = plugin_names(name)
    root = Path(directory) / names.distribution
    if root.exists():
        raise BadInputError(f"{root} already exists; choose another --dir or name")
    values = {
        "x": names.entry_point,
        "dist": names.distribution,
        "module": names.module,
        "prefix": names.prefix,
        "MODULE": names.module.upper(),
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{names.module}/__init__.py": REGISTRATION,
        f"{names.module}/models.py": MODELS,
        f"{names.module}/datasets.py": DATASETS,
        f"{names.module}/augmentations.py": AUGMENTATIONS,
        f"{names.module}/optimizers.py": OPTIMIZERS,
        f"tests/test_{names.module}.py": TESTS,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values))
    return root


PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A zoo plugin: models, data sets, augmentations and optimizers for `zoo train`."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["zoo-models", "torch>=2.4"]

[project.optional-dependencies]
test = ["pytest>=7.4"]

# zoo finds the plugin through this entry point: group "zoo.plugins", name "$x", the registration module
[project.entry-points."zoo.plugins"]
$x = "$module"

[tool.setuptools]
packages = ["$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 110

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP", "SIM", "RUF"]
ignore = ["RUF001", "RUF002", "RUF003"]  # × in N×C×H×W
"""

README = """\
# $dist

A plugin for zoo. It registers:

| kind | name | builder |
|---|---|---|
| model | `$prefix-net` | `$module/models.py` — a two-layer CNN |
| data set | `$prefix-stripes` | `$module/datasets.py` — horizontal or vertical stripes, drawn (no download) |
| augmentation | `$prefix-noise` | `$module/augmentations.py` — Gaussian noise on a whole batch |
| optimizer | `$prefix-lion` | `$module/optimizers.py` — Lion (Chen et al. 2023): sign of a blended momentum |

```bash
pip install -e ".[test]"
zoo list '$prefix-*'                  # the entries, beside zoo's built-ins
zoo check $x                          # zoo's conformance checks of every entry
pytest                                # this package's tests (zoo_core.kit.testing)
zoo train $prefix-stripes $prefix-net --aug $prefix-noise:sigma=0.2
zoo train $prefix-stripes $prefix-net --optimizer $prefix-lion:beta2=0.98 --lr 1e-3
```

Keep `$module/__init__.py` free of torch: `zoo list` imports it. Builders are named there as
`"module:function"` strings and imported only when an entry is built. See zoo's docs/plugins.md for the
contracts, and publish with `python -m build && twine upload dist/*`.
"""

REGISTRATION = '''\
"""$dist: the hooks zoo calls to register this plugin's entries.

``zoo list`` imports this module: it must not import torch. Builders are ``"module:function"`` strings,
imported when an entry is built.
"""

from __future__ import annotations

from zoo_core import hookimpl


@hookimpl
def register_models(registry):
    registry.register(
        "$prefix-net",
        "$module.models:net",
        summary="A two-layer CNN for small images",
        family="$x",
        input_size=(3, 32, 32),
        num_classes=2,
        default_dataset="$prefix-stripes",
        params=1_450,  # at num_classes=2, in_chans=3: `zoo check $x` compares it with the built model
    )


@hookimpl
def register_datasets(registry):
    registry.register(
        "$prefix-stripes",
        "$module.datasets:stripes",
        summary="Horizontal or vertical stripes, drawn at random: 1,000 train / 200 test, 3×32×32",
        num_classes=2,
        input_size=(3, 32, 32),
        mean=None,  # None: computed from the training images
        std=None,
        splits=("train", "test"),
        recipe={"epochs": 3, "batch_size": 64, "optimizer": "adamw", "lr": 3e-3, "flip": True},
        default_model="$prefix-net",
    )


@hookimpl
def register_augmentations(registry):
    registry.register(
        "$prefix-noise",
        "$module.augmentations:noise",
        summary="Add Gaussian noise to each image with probability p",
        level="batch",
        soft_targets=False,  # True if it mixes labels: then it returns (N, num_classes) rows summing to 1
        options={
            "sigma": "noise standard deviation (default 0.1)",
            "p": "probability per image (default 0.5)",
        },
    )


@hookimpl
def register_optimizers(registry):
    registry.register(
        "$prefix-lion",
        "$module.optimizers:lion",
        summary="Lion (Chen et al. 2023): steps by the sign of an interpolated momentum",
        options={  # every keyword of the builder but param_groups and lr; `zoo check $x` compares them
            "beta1": "weight of the momentum in the step's sign (default 0.9)",
            "beta2": "decay of the momentum itself (default 0.99)",
        },
        matrices_only=False,  # True: zoo gives it only tensors of 2+ dimensions, the rest to `others`
    )
'''

MODELS = '''\
"""The model builders: ``builder(*, num_classes, in_chans=3, **kwargs) -> nn.Module``, logits out."""

from __future__ import annotations

from torch import nn


def net(*, num_classes: int, in_chans: int = 3, width: int = 8) -> nn.Module:
    """A two-layer CNN for small images."""
    return nn.Sequential(
        nn.Conv2d(in_chans, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )
'''

DATASETS = '''\
"""The data-set builders: ``builder(*, root, split, **kwargs)`` returns ``classes`` and either in-memory
``images`` (uint8 N×C×H×W) and ``labels`` (int64 N), or a torch Dataset of (uint8 C×H×W, int) pairs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

CLASSES = ["horizontal", "vertical"]
SIZES = {"train": 1000, "test": 200}


@dataclass
class Stripes:
    """In memory: exactly what zoo needs (no __getitem__ required)."""

    classes: list[str]
    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def stripes(*, root: Path | None = None, split: str, size: int = 32) -> Stripes:
    """Horizontal or vertical stripes, drawn at random (``root`` is unused: nothing is read)."""
    if split not in SIZES:
        raise ValueError(f"splits are {', '.join(SIZES)}, not {split!r}")
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = SIZES[split]
    labels = torch.randint(0, len(CLASSES), (n,), generator=g)
    period = 4 + 6 * torch.rand(n, 1, 1, generator=g)
    phase = 6.3 * torch.rand(n, 1, 1, generator=g)
    coords = torch.arange(size, dtype=torch.float32)
    across = torch.where(labels.view(n, 1, 1) == 0, coords.view(1, size, 1), coords.view(1, 1, size))
    wave = 0.5 + 0.5 * torch.sin(6.2832 * across / period + phase)  # N×H×W
    colour = torch.rand(n, 3, 1, 1, generator=g)
    images = 0.8 * wave.unsqueeze(1) * colour + 0.2 * torch.rand(n, 3, size, size, generator=g)
    return Stripes(list(CLASSES), (images * 255).round().to(torch.uint8), labels)
'''

AUGMENTATIONS = '''\
"""The batch augmentations: ``builder(*, num_classes, **options)`` returns ``aug(x, y, generator=None)``.

``x`` is a float batch N×C×H×W on any device; ``y`` int64 labels (N,) or soft targets (N, num_classes).
Work on the whole batch (no loop over images) and draw every random number from ``generator``, so the same
seed gives the same result.
"""

from __future__ import annotations

import torch


class Noise:
    def __init__(self, sigma: float, p: float) -> None:
        if sigma < 0 or not 0 <= p <= 1:
            raise ValueError(f"need sigma >= 0 and 0 <= p <= 1, got sigma={sigma}, p={p}")
        self.sigma, self.p = sigma, p

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=generator) < self.p
        noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
        return x + chosen * self.sigma * noise, y


def noise(*, num_classes: int, sigma: float = 0.1, p: float = 0.5) -> Noise:
    """Add Gaussian noise to each image with probability p."""
    return Noise(sigma, p)
'''

OPTIMIZERS = '''\
"""The optimizer builders: ``builder(param_groups, *, lr, **options) -> torch.optim.Optimizer``.

``param_groups`` is what torch's optimizers take: zoo passes dicts with ``params``, ``lr`` and
``weight_decay`` (no decay on biases and norms). Keep every value in the state dict a tensor or a plain value:
a checkpoint is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): each weight moves by ±lr,
    the sign of a blend of its momentum and the new gradient; one state tensor per weight (AdamW keeps two).
    Its learning rate is typically 3–10× smaller than AdamW's, its weight decay as much larger."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or not all(0 <= b < 1 for b in betas) or weight_decay < 0:
            raise ValueError(f"lr >= 0, betas in [0, 1), weight_decay >= 0: {lr}, {betas}, {weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["exp_avg"] = torch.zeros_like(param)
                momentum = state["exp_avg"]
                update = momentum.lerp(param.grad, 1 - beta1).sign_()
                param.mul_(1 - group["lr"] * group["weight_decay"])  # decoupled, as in AdamW
                param.add_(update, alpha=-group["lr"])
                momentum.lerp_(param.grad, 1 - beta2)
        return loss


def lion(param_groups: Iterable[Any], *, lr: float, beta1: float = 0.9, beta2: float = 0.99) -> Lion:
    """Lion (Chen et al. 2023): steps by the sign of an interpolated momentum."""
    return Lion(param_groups, lr=lr, betas=(beta1, beta2))
'''

TESTS = '''\
"""$dist's tests: zoo's conformance kit (what `zoo check $x` runs) and one real epoch of training."""

from __future__ import annotations

import subprocess
import sys

import torch
from zoo_core.kit.testing import check_plugin, train_smoke

from $module.optimizers import lion


def test_registration_never_imports_torch():
    code = "import sys, $module; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_every_entry_honours_the_contracts():
    check_plugin("$x")  # raises, listing each failed check and its reason


def test_one_epoch_trains():
    metrics = train_smoke(
        "$prefix-stripes", "$prefix-net", augs=["$prefix-noise:p=1.0"], optimizer="$prefix-lion", lr=1e-3
    )
    assert metrics["epoch"] == 1


def test_lion_steps_by_the_sign_of_the_blended_momentum():
    weight = torch.zeros(3, requires_grad=True)
    optimizer = lion([{"params": [weight], "lr": 0.1, "weight_decay": 0.0}], lr=0.1, beta1=0.5, beta2=0.75)
    weight.grad = torch.tensor([2.0, -3.0, 0.0])
    optimizer.step()  # no momentum yet: the gradient's sign
    assert torch.allclose(weight, torch.tensor([-0.1, 0.1, 0.0]))
    weight.grad = torch.tensor([-1.0, -1.0, 1.0])  # momentum now 0.25·g1 = (0.5, -0.75, 0)
    optimizer.step()  # sign(0.5·m + 0.5·g2) = sign(-0.25, -0.875, 0.5)
    assert torch.allclose(weight, torch.tensor([0.0, 0.2, -0.1]))
'''
