"""Problem worlds: the toy arithmetic world (:mod:`.arith`) and real datasets (:mod:`.real`).

The stages see a world only through :class:`~scrit_utils.worlds.base.World` (:mod:`.base`), chosen once
from ``world.kind`` here; nothing outside this package branches on the kind.

Usage::

    from scrit_utils import worlds
    world = worlds.get(cfg)          # cfg: a StudyConfig (or a recording view of one)
"""
from __future__ import annotations

from typing import Any

from scrit_utils.worlds.arith import ArithConfig
from scrit_utils.worlds.base import World
from scrit_utils.worlds.arith_world import ArithWorld
from scrit_utils.worlds.real_world import RealWorld

KINDS = ("arith", "real")


def _classes() -> dict[str, type[World]]:
    return {"arith": ArithWorld, "real": RealWorld}


def get(cfg: Any) -> World:
    """The world ``cfg.world.kind`` names, holding ``cfg``."""
    kind = cfg.world.kind
    classes = _classes()
    if kind not in classes:
        raise ValueError(f"world.kind: unknown world {kind!r}; known: {sorted(classes)}")
    return classes[kind](cfg)


__all__ = ["ArithConfig", "KINDS", "World", "get"]
