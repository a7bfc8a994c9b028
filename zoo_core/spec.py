"""``NAME:option=value,...`` specs, as ``--aug`` and ``--optimizer`` take them: parsing, and checking the
options against the builder's signature before it is called, so a typo names the option and the entry.

Option values read as int, float, true/false, none, or else text; a value is then fitted to the type the
builder's parameter is annotated with (an int where a float is asked for becomes a float).
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from zoo_core.errors import BadInputError

_INT = re.compile(r"[+-]?\d+")
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text", type(None): "none"}


def parse_value(text: str) -> Any:
    """``"3"`` → 3, ``"0.5"`` or ``"1e-3"`` → float, ``"true"``/``"false"`` → bool, ``"none"`` → None,
    anything else → the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if _INT.fullmatch(lowered):
        return int(lowered)
    try:
        return float(lowered)
    except ValueError:
        return text.strip()


def parse_call(text: str, *, spec: str, what: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``"cutmix:alpha=1.0"`` → ``("cutmix", {"alpha": 1.0}, {"alpha": "1.0"})``: the lower-case name, the
    parsed options and their texts; ``spec`` is the whole text the messages quote."""
    name, _, options_text = text.partition(":")
    name = name.strip().lower()
    if not name:
        raise BadInputError(f"{what} spec {spec!r}: a name is missing (NAME:option=value,...)")
    options, raw = parse_options(options_text, spec=spec, what=what)
    return name, options, raw


def parse_options(text: str, *, spec: str, what: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``"alpha=1.0,p=0.5"`` → the parsed options and their texts as typed; ``what`` ("Augmentation",
    "Optimizer") starts each error message."""
    options: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or not key or not value.strip():
            raise BadInputError(f"{what} spec {spec!r}: {item!r} is not option=value (NAME:option=value,...)")
        if key in options:
            raise BadInputError(f"{what} spec {spec!r}: option {key!r} is given twice")
        options[key], raw[key] = parse_value(value), value.strip()
    return options, raw


def builder_parameters(builder: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], bool]:
    """The builder's keyword parameters, with annotations evaluated where possible, and whether it takes
    ``**kwargs``."""
    try:
        signature = inspect.signature(builder, eval_str=True)
    except (NameError, TypeError, SyntaxError):  # annotations naming what only exists for type checkers
        signature = inspect.signature(builder)
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = {name: p for name, p in signature.parameters.items() if p.kind in keyword}
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    return parameters, open_ended


def bind_options(
    label: str,
    builder: Callable[..., Any],
    options: Mapping[str, Any],
    raw: Mapping[str, str],
    *,
    reserved: Iterable[str] = (),
    reserved_why: str = "set by zoo from the run, not in the spec",
) -> dict[str, Any]:
    """``options`` checked against ``builder``'s keywords and fitted to their types; ``label`` names the
    entry in messages (``"Augmentation 'cutmix'"``). ``reserved`` options are set by zoo, never by a spec
    (``reserved_why`` says by what)."""
    parameters, open_ended = builder_parameters(builder)
    reserved = set(reserved)
    settable = [name for name in parameters if name not in reserved]
    kwargs = {}
    for option, value in options.items():
        if option in reserved:
            raise BadInputError(f"{label}: option {option!r} is {reserved_why}")
        if option not in parameters and not open_ended:
            close = difflib.get_close_matches(option, settable, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(settable) or "none"
            raise BadInputError(f"{label} has no option {option!r}.{hint} (options: {listed})")
        annotation = parameters[option].annotation if option in parameters else inspect.Parameter.empty
        kwargs[option] = coerce(label, option, value, raw.get(option, str(value)), annotation)
    return kwargs


def coerce(label: str, option: str, value: Any, text: str, annotation: Any) -> Any:
    """Fit a parsed value to the option's annotated type (int, float, bool, str, optionally None)."""
    allowed = _basic_types(annotation)
    if allowed is None:  # no annotation, or one we do not read: the builder checks the value itself
        return value
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool):
        if bool in allowed:
            return value
    elif isinstance(value, int) and int in allowed:
        return value
    elif isinstance(value, int | float) and float in allowed:
        return float(value)
    if str in allowed:
        return text
    wanted = " or ".join(_TYPE_WORDS[t] for t in allowed if t in _TYPE_WORDS)
    raise BadInputError(f"{label}: option {option!r} must be {wanted}, got {text!r}")


def _basic_types(annotation: Any) -> tuple[type, ...] | None:
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return None
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
    else:
        members = (annotation,)
    if not all(m in _TYPE_WORDS for m in members):
        return None
    return members
