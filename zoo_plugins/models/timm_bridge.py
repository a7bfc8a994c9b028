"""The ``timm/<name>`` namespace: any timm model by name, built with zoo's num_classes and in_chans, from
scratch unless ``pretrained=True`` (``zoo train --init pretrained``: timm fetches its published weights).
timm is imported only inside these functions, when such a name is used."""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from zoo_core.errors import UnknownNameError


def list_names() -> list[str]:
    """Every architecture name timm knows (without pretrained-weight tags)."""
    import timm

    return timm.list_models()


def create(
    name: str, *, num_classes: int | None = 1000, in_chans: int = 3, pretrained: bool = False, **kwargs: Any
) -> nn.Module:
    """Build timm model ``name``; extra keywords (``drop_rate``, ``img_size`` …) go to timm.

    ``pretrained=True`` loads timm's published weights; with ``num_classes=None`` the model keeps the
    classifier of those weights."""
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr('timm/' + c) for c in close)}?" if close else ""
        raise UnknownNameError(f"Unknown timm model {name!r}.{hint} (see: zoo list models 'timm/*')")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return timm.create_model(name, pretrained=pretrained, in_chans=in_chans, **kwargs)
