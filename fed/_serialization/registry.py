"""User types that cross between parties through a pair of functions (``fed.register_type``).

A registered class crosses as its registered name and the *wire parts* its ``to_wire`` function
returns — any value fed's codec carries (dicts, lists, arrays, ...). The receiving party, which
registered the same name, rebuilds the object with ``from_wire(parts)``. Nothing else about the
class is sent, so no code and no constructor the sender chooses runs at the receiver: only the
``from_wire`` function this party registered, given plain data.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:<>-]{0,199}")


@dataclass(frozen=True)
class Entry:
    cls: type
    name: str
    to_wire: Callable[[Any], Any]
    from_wire: Callable[[Any], Any]


@dataclass(frozen=True)
class Types:
    """The registered types a codec uses, by class (to encode) and by name (to decode)."""

    by_class: Mapping[type, Entry]
    by_name: Mapping[str, Entry]


_lock = threading.Lock()
_entries: dict[str, Entry] = {}
_frozen_by: list[str] = []  # set while fed.init runs: registering then would not reach its proxies

NONE = Types({}, {})


def register_type(cls: type, to_wire: Callable[[Any], Any], from_wire: Callable[[Any], Any], *,
                  name: str | None = None) -> None:
    """Let instances of ``cls`` cross between parties as ``to_wire(obj)``, rebuilt by ``from_wire``.

    Call it at every party, with the same ``name`` (default: the class's module and qualified
    name), before ``fed.init``. ``to_wire`` returns what fed's codec carries (None, bool, int,
    float, str, bytes, lists, tuples, dicts, sets, numpy arrays, other registered types...);
    ``from_wire`` gets that value back at the receiving party. Only instances of exactly ``cls``
    are matched (not subclasses).

    >>> import fed
    >>> class Weights:
    ...     def __init__(self, layers): self.layers = layers
    >>> fed.register_type(Weights, to_wire=lambda w: w.layers, from_wire=Weights)  # doctest: +SKIP
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_type needs a class, got {cls!r}")
    if not callable(to_wire) or not callable(from_wire):
        raise TypeError("register_type needs callable to_wire and from_wire functions")
    name = f"{cls.__module__}.{cls.__qualname__}" if name is None else name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"invalid registered type name {name!r}: up to 200 letters, digits and _.:<>-")
    with _lock:
        if _frozen_by:
            raise RuntimeError(f"register types before fed.init (party {_frozen_by[0]!r} is running): its "
                               "sender and receiver already run with the types registered then")
        for other in _entries.values():
            if other.cls is cls and other.name != name:
                raise ValueError(f"{cls.__qualname__} is already registered as {other.name!r}")
        old = _entries.get(name)
        if old is not None and old.cls is not cls:
            raise ValueError(f"the name {name!r} is already registered for another class, "
                             f"{old.cls.__module__}.{old.cls.__qualname__}")
        _entries[name] = Entry(cls, name, to_wire, from_wire)


def snapshot() -> Types:
    """The types registered now, for one ``fed.init``."""
    with _lock:
        entries = list(_entries.values())
    return Types({e.cls: e for e in entries}, {e.name: e for e in entries})


def freeze(party: str) -> None:
    """``fed.init`` runs: registering now is an error until ``thaw``."""
    with _lock:
        _frozen_by[:] = [party]


def thaw() -> None:
    with _lock:
        _frozen_by.clear()


def unregister_all() -> None:
    """Forget every registered type (tests)."""
    with _lock:
        _entries.clear()
