"""The ``timm/<name>`` namespace: any timm model by name, built with zoo's num_classes and in_chans and
never with pretrained weights. timm is imported only inside these functions, when such a name is used."""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from zoo_core.errors import UnknownNameError


def list_names() -> list[str]:
    """Every architecture name timm knows (without pretrained-weight tags)."""
    import timm

    return timm.list_models()


def create(name: str, *, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """Build timm model ``name`` from scratch; extra keywords (``drop_rate``, ``img_size`` …) go to timm."""
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr('timm/' + c) for c in close)}?" if close else ""
        raise UnknownNameError(f"Unknown timm model {name!r}.{hint} (see: zoo list models 'timm/*')")
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
