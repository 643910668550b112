"""Recorded stage inputs: a config view that notes every key a stage reads, and the models/files it opens.

A stage's cache key has to be known *before* the stage runs (that is how a finished stage is found),
so it is still computed from the keys the stage declares (:func:`scrit_utils.core.artifacts.stage`). What
this module adds is the proof that the declaration is complete: the stage computes with
:class:`ConfigView` (from :meth:`scrit_utils.core.artifacts.Stage.record`) instead of the plain config,
and every value it reads is noted under its dotted key; every model directory or data file it opens
is noted through :func:`record_model` / :func:`record_file`, which the loaders call
(:func:`scrit_utils.generation.get_backend`, the SFT trainer). Before the manifest is written,
:meth:`scrit_utils.core.artifacts.Stage.finish` compares what was recorded with what the key covers and
raises :class:`UnrecordedInputError` naming each input the hash misses -- so a stage whose declared
keys lag behind its code cannot be cached under a key that would later be reused wrongly. The
recorded set is stored in the manifest (``inputs``), which shows what a cached result depended on.

Usage::

    st = artifacts.stage("01_data", cfg, KEYS, VERSION)
    if not st.done:
        view = st.record(cfg)          # read the config only through ``view`` inside the stage
        ...compute with view...
        st.finish(counts=...)          # raises UnrecordedInputError if view read an undeclared key

Rules of the view: reading a field that holds a section (a dataclass) gives a view of that section
and records nothing yet; reading any other value (a number, a string, a tuple -- also a tuple of
sections, such as ``models.generators``) records its full dotted key. Calling a method of a section,
comparing or hashing a section, or converting it (:func:`scrit_utils.core.config.to_dict`) records the
whole section, since what such code reads cannot be seen from outside.
"""
from __future__ import annotations

import contextvars
import dataclasses
from pathlib import Path
from typing import Any, Iterable

# keys that decide where results go or how fast they come, never what they are
INERT_KEYS = (
    "run.name",  # names the results folder
    "run.artifacts_dir",  # where the cache lives
    "run.results_dir",  # where tables and figures go
    "run.torch_threads",  # thread count: same numbers, different speed
    "run.notebooks",  # which notebooks `scrit run` executes
    "self_critique.examples_shown",  # how many examples notebook 02 prints
)


class UnrecordedInputError(RuntimeError):
    """A stage read a config key (or opened a model/file) that its cache key does not cover."""


class Recorder:
    """What one stage read: dotted config keys and opened paths / model references."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.models: set[str] = set()
        self.files: set[str] = set()

    def as_dict(self) -> dict[str, list[str]]:
        return {"keys": sorted(self.keys), "models": sorted(self.models), "files": sorted(self.files)}


_ACTIVE: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("scrit_stage_recorder", default=None)


def activate(rec: Recorder | None) -> contextvars.Token:
    """Make ``rec`` the recorder that :func:`record_model` / :func:`record_file` write to."""
    return _ACTIVE.set(rec)


def deactivate(token: contextvars.Token) -> None:
    _ACTIVE.reset(token)


def record_model(ref: Any) -> None:
    """Note that the running stage opens model ``ref`` (a local dir or a hub id); no-op outside a stage."""
    rec = _ACTIVE.get()
    if rec is not None and ref:
        rec.models.add(str(ref))


def record_file(path: Any) -> None:
    """Note that the running stage reads the local file or folder ``path``; no-op outside a stage."""
    rec = _ACTIVE.get()
    if rec is not None and path:
        rec.files.add(str(Path(path).resolve()))


class ConfigView:
    """Read-only view of a (section of a) config dataclass that records what is read; see the module doc."""

    __slots__ = ("_obj", "_prefix", "_rec")

    def __init__(self, obj: Any, recorder: Recorder, prefix: str = "") -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_rec", recorder)

    def _key(self, name: str) -> str:
        return f"{self._prefix}.{name}" if self._prefix else name

    def _touch_all(self) -> None:
        # the whole section; for the root that is every top-level section
        if self._prefix:
            self._rec.keys.add(self._prefix)
        else:
            self._rec.keys.update(f.name for f in dataclasses.fields(self._obj) if f.name != "source")

    def __getattr__(self, name: str) -> Any:
        obj = object.__getattribute__(self, "_obj")
        fields = {f.name for f in dataclasses.fields(obj)}
        value = getattr(obj, name)
        if name == "source":  # the profile's file name, used in error messages only
            return value
        if name not in fields:  # a method or property: what it reads is invisible here
            self._touch_all()
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return ConfigView(value, self._rec, self._key(name))
        self._rec.keys.add(self._key(name))
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r} of a config view")

    def __eq__(self, other: Any) -> bool:
        self._touch_all()
        return unwrap(self) == unwrap(other)

    def __hash__(self) -> int:
        self._touch_all()
        return hash(self._obj)

    def __repr__(self) -> str:
        return f"ConfigView({self._prefix or '<root>'}: {self._obj!r})"

    def unwrap_recorded(self) -> Any:
        """The wrapped dataclass, recording the whole section (for code that needs the real object)."""
        self._touch_all()
        return self._obj


def unwrap(x: Any) -> Any:
    """The dataclass behind a :class:`ConfigView` (recording the whole section); anything else unchanged."""
    return x.unwrap_recorded() if isinstance(x, ConfigView) else x


def raw(x: Any) -> Any:
    """The dataclass behind a view *without* recording: for describing a stage (its hash is the
    record of what it reads), never for computing with."""
    return object.__getattribute__(x, "_obj") if isinstance(x, ConfigView) else x


def key_covered(key: str, declared: Iterable[str]) -> bool:
    """True when ``key`` is a declared key, lies inside one (``world`` covers ``world.arith.ops``), or is inert."""
    for d in tuple(declared) + INERT_KEYS:
        if key == d or key.startswith(d + "."):
            return True
    return False


def uncovered(rec: Recorder, declared_keys: Iterable[str], digested_models: Iterable[str],
              covered_dirs: Iterable[Path], hub_refs: Iterable[str], named_paths: Iterable[Path] = ()) -> list[str]:
    """What ``rec`` holds that a stage key does not cover, each as a readable line.

    A model is covered when it lies inside one of ``covered_dirs`` (the stage's own dir and its
    upstream stages' dirs: their hashes are in the key), is a local model dir whose digest is in the
    key (``digested_models``), or is a hub id named by a declared key (``hub_refs``). A file is covered
    inside ``covered_dirs`` or inside a local path a declared key names (``named_paths``: the key holds
    its name, not its content -- data sets are taken as immutable, models are not).
    """
    declared = tuple(declared_keys)
    out = [f"config key {k}" for k in sorted(rec.keys) if not key_covered(k, declared)]
    digested = {str(Path(p).resolve()) for p in digested_models}
    dirs = [Path(d).resolve() for d in covered_dirs]
    hubs = set(hub_refs)

    def inside(p: Path) -> bool:
        return any(p == d or d in p.parents for d in dirs)

    for m in sorted(rec.models):
        p = Path(m)
        if m in hubs or (p.is_absolute() or p.exists()) and (str(p.resolve()) in digested or inside(p.resolve())):
            continue
        out.append(f"model {m}")
    named = [Path(p).resolve() for p in named_paths]
    for f in sorted(rec.files):
        p = Path(f)
        if not inside(p) and not any(p == d or d in p.parents for d in named):
            out.append(f"file {f}")
    return out
