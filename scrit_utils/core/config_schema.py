"""Typed conversion of a profile's plain YAML tree into the frozen dataclasses of :mod:`scrit_utils.core.config`.

:func:`build` checks every key of a section against a dataclass's fields and type hints and raises
:class:`ConfigError` naming the file and the dotted key of the first bad value (an unknown key, a
missing required key, a wrong type); :mod:`scrit_utils.core.config` calls it and re-exports the error::

    from scrit_utils.core.config_schema import build
    section = build(TrainingConfig, {"learning_rate": 1e-3}, "training", "configs/toy.yaml")
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any, Literal, Mapping

from scrit_utils.core.toy_recipe import BuildConfig


#: field metadata key: a key added after results were committed. ``config.to_dict`` leaves it out while it is at
#: its default, so the stage hashes that cover its section (and the caches and results behind them) do not move
#: for the profiles that do not set it; once set, it is part of them like any other key.
HASHED_WHEN_SET = "hashed_when_set"


class ConfigError(ValueError):
    """Bad profile: the message names the file and the dotted key."""


# --- conversion ----------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, src: str) -> Any:
    def fail() -> ConfigError:
        return ConfigError(f"{src}: {key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")

    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if tp is dict:  # the toy world's base_models section, checked by the world package
        return check_base_models(value, key, src)
    if tp is type(None):
        if value is None:
            return None
        raise fail()
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _convert(value, arg, key, src)
            except ConfigError as e:
                errors.append(e)
        # a nested error (deeper key) is more useful than the generic one
        deeper = [e for e in errors if f": {key}." in str(e)]
        raise deeper[0] if deeper else fail()
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise fail()
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise fail()
        (item_tp, *_) = typing.get_args(tp)
        return tuple(_convert(v, item_tp, f"{key}[{i}]", src) for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise fail()
        return build(tp, value, key, src)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "5e-6" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise fail()
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail()
    raise ConfigError(f"{src}: {key}: unsupported schema type {tp!r}")  # pragma: no cover


def unknown_key(src: str, prefix: str, key: Any, allowed) -> str:
    """``configs/x.yaml: training.learning_rat: unknown key; did you mean training.learning_rate?``, or the
    allowed keys when none is close (difflib's ratio >= 0.6: a typo, not a different word)."""
    dotted = f"{prefix}.{key}" if prefix else str(key)
    near = difflib.get_close_matches(str(key), sorted(allowed), n=1)
    if near:
        return f"{src}: {dotted}: unknown key; did you mean {f'{prefix}.{near[0]}' if prefix else near[0]}?"
    return f"{src}: {dotted}: unknown key (allowed: {', '.join(sorted(allowed))})"


def build(cls: type, data: Mapping, prefix: str, src: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    for k in data:
        if k not in fields:
            raise ConfigError(unknown_key(src, prefix, k, fields))
    kwargs = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], dotted, src)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{src}: {dotted}: required key is missing")
    try:
        return cls(**kwargs)
    except ValueError as e:  # a section's own check (e.g. ArithConfig: min_steps <= max_steps)
        raise ConfigError(f"{src}: {prefix or '<top>'}: {e}") from None


def check_base_models(value: Mapping, key: str, src: str) -> dict:
    """The toy world's ``base_models`` profile section, checked against the base-model recipe's key names."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{src}: {key}: expected mapping, got {type(value).__name__} {value!r}")
    allowed = {f.name for f in dataclasses.fields(BuildConfig)} - {"world", "seed"}
    for k in value:
        if k not in allowed:
            raise ConfigError(unknown_key(src, key, k, allowed))
    return json.loads(json.dumps(value))
