"""Problem worlds: the toy arithmetic world (:mod:`.arith`) and real datasets (:mod:`.real`).

The stages see a world only through :class:`~scrit_utils.worlds.base.World` (:mod:`.base`), chosen once
from ``world.kind`` here; nothing outside this package branches on the kind.

Usage::

    from scrit_utils import worlds
    world = worlds.get(cfg)          # cfg: a StudyConfig (or a recording view of one)
"""
from __future__ import annotations

from typing import Any, Mapping

from scrit_utils.worlds.arith import ArithConfig
from scrit_utils.worlds.base import World

KINDS = ("arith", "real")


def _classes() -> dict[str, type[World]]:
    from scrit_utils.worlds.arith_world import ArithWorld
    from scrit_utils.worlds.real_world import RealWorld

    return {"arith": ArithWorld, "real": RealWorld}


def get(cfg: Any) -> World:
    """The world ``cfg.world.kind`` names, holding ``cfg``."""
    kind = cfg.world.kind
    classes = _classes()
    if kind not in classes:
        raise ValueError(f"world.kind: unknown world {kind!r}; known: {sorted(classes)}")
    return classes[kind](cfg)


def check_base_models(value: Mapping, key: str, src: str, error: type[Exception]) -> dict:
    """The toy world's ``base_models`` profile section, checked against the base-model recipe's key names."""
    import dataclasses
    import json

    if not isinstance(value, Mapping):
        raise error(f"{src}: {key}: expected mapping, got {type(value).__name__} {value!r}")
    from scrit_utils.base_models import BuildConfig

    allowed = {f.name for f in dataclasses.fields(BuildConfig)} - {"world", "seed"}
    for k in value:
        if k not in allowed:
            raise error(f"{src}: {key}.{k}: unknown key (allowed: {', '.join(sorted(allowed))})")
    return json.loads(json.dumps(value))


__all__ = ["ArithConfig", "KINDS", "World", "check_base_models", "get"]
