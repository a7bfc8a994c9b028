"""Registries of named builders with metadata: models, datasets, augmentations and optimizers.

A registration carries a name, metadata and a builder that may be a ``"package.module:function"`` string,
resolved on first use, so listing never imports torch. Dynamic names (``timm/<name>``) come from a
namespace: a prefix with one builder and a lister that is called only when such names are asked for.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from zoo_core.errors import BadInputError, DuplicateNameError, UnknownNameError, ZooError

KINDS = ("model", "dataset", "augmentation", "optimizer")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")

Builder = Callable[..., Any] | str


def resolve(target: Builder) -> Callable[..., Any]:
    """Turn a ``"package.module:attr"`` string into the object it names; callables pass through."""
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest candidates (ties kept), or ``""`` when none is close."""
    name = name.lower()
    scored = sorted(
        ((difflib.SequenceMatcher(None, name, c).ratio(), c) for c in set(candidates)), reverse=True
    )
    close = [c for score, c in scored if score >= 0.6 and score >= scored[0][0] - 0.05][:3]
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``vgg9`` before ``vgg11`` (digits compare as numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class Entry:
    """One registered name: its builder (maybe still a string), summary, aliases, plugin and metadata."""

    name: str
    kind: str
    builder: Builder
    summary: str = ""
    aliases: tuple[str, ...] = ()
    plugin: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """Where the builder lives, for people: ``"pkg.module:function"`` (and the name in a namespace)."""
        if isinstance(self.builder, str):
            return self.builder
        if isinstance(self.builder, partial) and self.builder.func is _build_in_namespace:
            builder, inner = self.builder.args
            target = builder if isinstance(builder, str) else getattr(builder, "__qualname__", repr(builder))
            return f"{target}({inner!r})"
        return f"{getattr(self.builder, '__module__', '?')}:{getattr(self.builder, '__qualname__', '?')}"

    def load(self) -> Callable[..., Any]:
        """The builder itself, importing its module on first use."""
        try:
            return resolve(self.builder)
        except (ImportError, AttributeError) as err:  # a plugin's builder that is not there: its fault
            where = f"{self.kind} {self.name!r} (plugin {self.plugin})"
            raise ZooError(f"{where}: cannot load its builder {self.target}: {err}") from err

    def build(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)


@dataclass(frozen=True)
class Namespace:
    """A family of dynamic names ``<prefix>/<name>``, listed by ``lister`` only when asked for."""

    prefix: str
    builder: Builder
    lister: Builder
    summary: str = ""
    plugin: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    describe: Builder | None = None  # inner name -> {"summary": …, metadata…} of that one name

    def names(self) -> list[str]:
        return [f"{self.prefix}/{name}" for name in resolve(self.lister)()]

    def entry(self, kind: str, name: str) -> Entry:
        inner = name.split("/", 1)[1]
        own = dict(resolve(self.describe)(inner)) if self.describe is not None else {}
        return Entry(
            name=name,
            kind=kind,
            builder=partial(_build_in_namespace, self.builder, inner),
            summary=own.pop("summary", self.summary),
            plugin=self.plugin,
            meta={**self.meta, **own},
        )


def _build_in_namespace(builder: Builder, inner: str, **kwargs: Any) -> Any:
    return resolve(builder)(inner, **kwargs)


class Registry:
    """Names of one kind (model, dataset, augmentation) mapped to builders and metadata."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._namespaces: dict[str, Namespace] = {}
        self._plugin: str | None = None  # the plugin whose hook is running, set by the loader
        self.conflicts: list[tuple[str | None, str]] = []  # (plugin, message) of rejected duplicates
        self.failed_plugins: list[str] = []  # plugins whose entries of this kind failed to load

    # -- registration -------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        builder: Builder | None = None,
        *,
        summary: str = "",
        aliases: Iterable[str] = (),
        **meta: Any,
    ) -> Any:
        """Register ``builder`` under ``name``; without a builder, return a decorator that does."""
        if builder is None:

            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.register(name, fn, summary=summary, aliases=aliases, **meta)
                return fn

            return decorator
        aliases = tuple(aliases)
        for n in (name, *aliases):
            if not isinstance(n, str) or not _NAME.fullmatch(n):
                raise ValueError(
                    f"Invalid {self.kind} name {n!r}: use lower-case letters, digits, '_', '.', '-'"
                )
        if not summary and callable(builder):
            summary = (builder.__doc__ or "").strip().split("\n")[0]
        entry = Entry(name, self.kind, builder, summary, aliases, self._plugin, dict(meta))
        taken = [n for n in (name, *aliases) if n in self._entries or n in self._aliases]
        if taken:
            owner = self._owner(taken[0])
            message = (
                f"{self.kind} name {taken[0]!r} from plugin {self._plugin or '<api>'!r} is already "
                f"registered by plugin {owner or '<api>'!r}; the second registration was ignored"
            )
            if self._plugin is None:  # a direct API call: the caller gets the error
                raise DuplicateNameError(message)
            self.conflicts.append((self._plugin, message))
            return builder
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name
        return builder

    def register_namespace(
        self,
        prefix: str,
        builder: Builder,
        *,
        lister: Builder,
        summary: str = "",
        describe: Builder | None = None,
        **meta: Any,
    ) -> None:
        """Register dynamic names ``<prefix>/<name>``: ``builder(name, **kwargs)``, ``lister() -> names``;
        ``describe(name) -> dict`` (optional) gives one name's own summary and metadata over ``meta``."""
        if not _NAME.fullmatch(prefix):
            raise ValueError(f"Invalid namespace {prefix!r}")
        if prefix in self._namespaces:
            owner = self._namespaces[prefix].plugin
            message = f"{self.kind} namespace {prefix!r} is already registered by plugin {owner!r}"
            if self._plugin is None:
                raise DuplicateNameError(message)
            self.conflicts.append((self._plugin, message))
            return
        namespace = Namespace(prefix, builder, lister, summary, self._plugin, dict(meta), describe)
        self._namespaces[prefix] = namespace

    @contextmanager
    def owned_by(self, plugin: str) -> Iterator[None]:
        """Attribute registrations to ``plugin``; if the block raises, roll back what it added."""
        before_entries, before_ns = set(self._entries), set(self._namespaces)
        self._plugin = plugin
        try:
            yield
        except BaseException:
            for name in set(self._entries) - before_entries:
                del self._entries[name]
            for prefix in set(self._namespaces) - before_ns:
                del self._namespaces[prefix]
            self._aliases = {a: n for a, n in self._aliases.items() if n in self._entries}
            raise
        finally:
            self._plugin = None

    # -- lookup -------------------------------------------------------------------------------------

    def _owner(self, name: str) -> str | None:
        canonical = self._aliases.get(name, name)
        return self._entries[canonical].plugin

    def get(self, name: str) -> Entry:
        """The entry for ``name`` (case-insensitive, aliases allowed); unknown names suggest close ones."""
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key in self._entries:
            return self._entries[key]
        prefix, sep, _ = key.partition("/")
        if sep and prefix in self._namespaces:
            namespace = self._namespaces[prefix]
            known = namespace.names()
            if key in known:
                return namespace.entry(self.kind, key)
            raise self._unknown(name, known)
        raise self._unknown(name, [*self._entries, *self._aliases])

    def _unknown(self, name: str, candidates: list[str]) -> UnknownNameError:
        message = f"Unknown {self.kind} {name!r}.{suggest(name, candidates)} (see: zoo list {self.kind}s)"
        if self.failed_plugins:
            message += f"; plugin(s) failed to load: {', '.join(self.failed_plugins)} (see: zoo plugins)"
        return UnknownNameError(message)

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        return self.get(name).build(*args, **kwargs)

    def names(
        self,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        plugin: str | None = None,
    ) -> list[str]:
        """Registered names matching shell-style patterns, naturally sorted.

        Namespace names (``timm/...``) are listed only when an include pattern starts with their prefix.
        """
        include = [include] if isinstance(include, str) else list(include or [])
        exclude = [exclude] if isinstance(exclude, str) else list(exclude or [])
        pool = list(self._entries)
        for prefix, namespace in self._namespaces.items():
            if any(p.lower().startswith(prefix + "/") for p in include):
                pool += namespace.names()
        selected = []
        for name in pool:
            if include and not any(fnmatch.fnmatchcase(name, p.lower()) for p in include):
                continue
            if any(fnmatch.fnmatchcase(name, p.lower()) for p in exclude):
                continue
            if plugin is not None and self._plugin_of(name) != plugin:
                continue
            selected.append(name)
        return sorted(selected, key=natural_key)

    def _plugin_of(self, name: str) -> str | None:
        if name in self._entries:
            return self._entries[name].plugin
        return self._namespaces[name.split("/", 1)[0]].plugin

    @property
    def namespaces(self) -> dict[str, Namespace]:
        return dict(self._namespaces)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in sorted(self._entries, key=natural_key)]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except (UnknownNameError, BadInputError):
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"
