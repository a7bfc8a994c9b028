"""Where data sets live: ``--data-dir`` > ``$ZOO_DATA`` > ``~/.cache/zoo``, each data set's files either
directly in that folder or in its conventional subfolder of it (``cifar-10-batches-py/``, ``mnist/``)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("~/.cache/zoo")


def resolve_data_root(root: str | Path | None) -> Path:
    """The data root: ``root`` when given, else ``$ZOO_DATA``, else ``~/.cache/zoo`` (user-expanded)."""
    if root is None or str(root) == "":
        root = os.environ.get("ZOO_DATA") or DEFAULT_ROOT
    return Path(root).expanduser()


def candidate_dirs(root: Path, subfolders: Sequence[str]) -> list[Path]:
    """The folders a data set may occupy: the root itself, then each conventional subfolder."""
    return [root, *(root / sub for sub in subfolders)]


def find_data_dir(root: Path, subfolders: Sequence[str], holds: Callable[[Path], bool]) -> Path | None:
    """The first of ``candidate_dirs(root, subfolders)`` for which ``holds(folder)`` is true, else None."""
    for folder in candidate_dirs(root, subfolders):
        if folder.is_dir() and holds(folder):
            return folder
    return None


def describe_dirs(root: Path, subfolders: Sequence[str]) -> str:
    """``'/data' and '/data/mnist'`` — for the one-line "looked in …" of a missing data set."""
    names = [str(p) for p in candidate_dirs(root, subfolders)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def default_cache_dir() -> Path:
    """Where decoded-image caches go: ``$ZOO_CACHE``, else ``<data root>/cache``."""
    env = os.environ.get("ZOO_CACHE")
    return Path(env).expanduser() if env else resolve_data_root(None) / "cache"


def read_cache(path: Path | None, *keys: str) -> tuple[Any, ...] | None:
    """The values of ``keys`` in a small JSON cache file (statistics, counts), or None when there is none
    or it does not read: a damaged or older cache is worked out again, never trusted."""
    if path is None or not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        return tuple(saved[key] for key in keys)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cache(path: Path | None, data: Any) -> None:
    """Write a small JSON cache file; one that cannot be written is only a cache, the caller carries on."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
