"""Objects of classes a party lists in ``serializing_allowed_list``: a restricted pickle, inside the codec.

fed's codec carries builtin data, standard types, arrays and registered types itself. An object
of any other class crosses as a pickle stream (the ``PICKLED`` tag) that the receiving party
unpickles only if it lists that class, with an unpickler that:

* resolves **exact names** only: ``module`` plus a name without dots (``'*'`` means the classes
  defined at the top level of that module), never attribute traversal, and never anything from
  modules that run code or reach the system (``builtins`` beyond a few data types, ``os``,
  ``subprocess``, ``sys``, ``pickle``, ...), whatever the list says;
* calls only what it resolved (REDUCE, NEWOBJ, OBJ, INST), and never changes what it resolved
  or an array (BUILD, APPEND, SETITEM... on them are refused);
* never meets numpy: arrays, numpy scalars, tensors and registered types inside the object are
  persistent ids, carried by the codec;
* charges every call and every state it applies against a budget proportional to the stream's
  size, so a few bytes cannot make it copy a large object many times.

A listed class is code the sender may call: its constructor, ``__setstate__`` and ``__reduce__``
callables run with arguments the sender chose. List only classes whose construction you trust.
"""

from __future__ import annotations

import importlib
import io
import logging
import pickle
import pickletools
import re
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cloudpickle

from fed._security.untrusted import clip
from fed._serialization.errors import DecodeError, EncodeError

logger = logging.getLogger("fed")

# Data types a pickled object may hold besides what the pickle opcodes build themselves.
SAFE: dict[str, frozenset[str]] = {
    "builtins": frozenset({"complex", "slice", "range"}),
    "collections": frozenset({"OrderedDict", "deque", "Counter"}),
    "datetime": frozenset({"date", "datetime", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
    "uuid": frozenset({"UUID"}),
    "fed._exceptions": frozenset({"FedRemoteError"}),
}
# Never resolved from a peer's stream, whatever serializing_allowed_list says: these run code or
# reach the system. numpy and torch are not needed: the codec carries arrays and tensors.
NEVER = ("builtins", "os", "posix", "nt", "subprocess", "sys", "importlib", "pickle", "_pickle", "marshal",
         "ctypes", "shutil", "socket", "runpy", "code", "codeop", "pty", "io", "_io", "multiprocessing",
         "operator", "functools", "types", "copyreg", "pickletools", "shelve", "tempfile", "pathlib", "signal",
         "threading", "_thread", "asyncio", "gc", "inspect", "weakref", "webbrowser", "platform", "posixpath",
         "ntpath", "glob", "fed", "ray", "numpy", "torch", "cloudpickle", "dill", "joblib", "sqlite3", "urllib",
         "http", "ssl", "select", "selectors", "zipimport", "pydoc", "timeit", "trace", "pdb", "bdb", "cProfile",
         "profile", "ensurepip", "venv", "distutils", "setuptools", "pip")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
BUDGET_PER_BYTE = 4


@dataclass(frozen=True)
class Allowed:
    """A party's ``serializing_allowed_list``, checked: exact names and ``'*'`` per module."""

    names: Mapping[str, frozenset[str]]
    star: frozenset[str]

    def permits(self, module: str, name: str) -> bool:
        """Whether a stream may name ``module.name`` (``name`` has no dots)."""
        if name in SAFE.get(module, ()):
            return True
        if _never(module):
            return False
        return name in self.names.get(module, ()) or module in self.star

    def __bool__(self) -> bool:
        return bool(self.names or self.star)


def _never(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in NEVER)


def compile_allowed(listed: Mapping[str, Iterable[str]] | None) -> tuple[Allowed, list[str]]:
    """``serializing_allowed_list`` as an ``Allowed``, and the entries it ignores (with why).

    A dotted name is a ``ValueError``: it would be attribute traversal.
    """
    names: dict[str, frozenset[str]] = {}
    star: set[str] = set()
    ignored: list[str] = []
    for module, entries in (listed or {}).items():
        if not isinstance(module, str) or not _MODULE.fullmatch(module):
            raise ValueError(f"serializing_allowed_list: {module!r} is not a module name")
        entries = list(entries)
        for entry in entries:
            if not isinstance(entry, str) or (entry != "*" and not _IDENT.fullmatch(entry)):
                raise ValueError(
                    f"serializing_allowed_list[{module!r}]: {entry!r} is not a plain name. fed resolves exact "
                    "names only (never attribute paths like 'A.b'): list the module that defines the class")
        if _never(module):
            carried = module.split(".")[0] in ("numpy", "torch")
            why = "not needed: fed carries arrays and tensors itself" if carried else "fed never resolves names from it"
            ignored.append(f"{module} ({why})")
            continue
        if "*" in entries:
            star.add(module)
        names[module] = frozenset(e for e in entries if e != "*")
    return Allowed(names, frozenset(star)), ignored


class _Carrying:
    """Arrays, numpy scalars, tensors and registered types inside a pickled object become
    persistent ids (``carried(obj)`` returns their wire form, or None for everything else)."""

    def __init__(self, file: io.BytesIO, carried: Callable[[Any], Any]) -> None:
        super().__init__(file, protocol=5)
        self._carried = carried
        self.objects: list[Any] = []

    def persistent_id(self, obj: Any) -> Any:
        wire = self._carried(obj)
        if wire is None:
            return None
        self.objects.append(wire)
        return len(self.objects) - 1


class Pickler(_Carrying, pickle.Pickler):
    """Pickles one object, classes by reference (the receiver resolves them by name)."""


class ByValuePickler(_Carrying, cloudpickle.Pickler):
    """Pickles one object with cloudpickle (``dumps_by_value``)."""


def dumps(obj: Any, carried: Callable[[Any], Any]) -> tuple[bytes, list[Any]]:
    """The pickle stream of ``obj`` and the wire forms of the objects its persistent ids name."""
    return _dump(Pickler, obj, carried)


def dumps_by_value(obj: Any, carried: Callable[[Any], Any]) -> tuple[bytes, list[Any]]:
    """As ``dumps``, with cloudpickle: classes and functions defined in ``__main__`` or inside a
    function travel by value, as Ray moves them. Only a peer that unpickles anything
    (``allow_unsafe_deserialization``) can load them."""
    return _dump(ByValuePickler, obj, carried)


def _dump(kind: type[pickle.Pickler], obj: Any, carried: Callable[[Any], Any]) -> tuple[bytes, list[Any]]:
    stream = io.BytesIO()
    pickler = kind(stream, carried)
    try:
        pickler.dump(obj)
    except Exception as exc:  # noqa: BLE001 - pickle raises many kinds
        cls = type(obj)
        what = f"fed's codec does not carry {cls.__module__}.{cls.__qualname__} and it cannot be pickled"
        todo = ("Register it with fed.register_type at both parties, or send plain data (dicts, lists, arrays)"
                if kind is Pickler else "Send plain data (dicts, lists, arrays) instead")
        if kind is Pickler and getattr(sys.modules.get(cls.__module__), cls.__qualname__, None) is not cls:
            todo = ("Its class cannot be found by its name (it is defined inside a function, or a task made it): "
                    f"define it at the top level of a module both parties import, and {todo[0].lower()}{todo[1:]}")
        raise EncodeError(f"{what} either ({type(exc).__name__}: {clip(str(exc), 200)}). {todo}",
                          public=f"{what} either ({type(exc).__name__}). {todo}") from None
    return stream.getvalue(), pickler.objects


_MUTATING = {pickle.BUILD[0], pickle.APPEND[0], pickle.APPENDS[0], pickle.SETITEM[0], pickle.SETITEMS[0],
             pickle.ADDITEMS[0]}


class _Unpickler(pickle._Unpickler):  # the pure-Python unpickler: its opcodes can be checked one by one
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes, allowed: Allowed, objects: list[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed
        self._objects = objects
        self._resolved: set[int] = set()  # ids of what find_class returned: the only callables
        self._fixed: set[int] = {id(o) for o in objects}  # resolved objects and carried ones: never mutated
        self._size = len(data)
        self._budget = BUDGET_PER_BYTE * len(data) + 1024

    def find_class(self, module: str, name: str) -> Any:
        if (type(module) is not str or type(name) is not str or not _IDENT.fullmatch(name)
                or not _MODULE.fullmatch(module) or not self._allowed.permits(module, name)):
            raise DecodeError("the value holds an object of a class this party does not accept",
                              detail=f"{clip(module, 100)}.{clip(name, 100)} is not on its serializing_allowed_list")
        obj = vars(importlib.import_module(module)).get(name)
        if obj is None or (name not in self._allowed.names.get(module, ()) and name not in SAFE.get(module, ())
                           and not (isinstance(obj, type) and obj.__module__ == module and obj.__qualname__ == name)):
            raise DecodeError("the value holds an object of a class this party does not accept",
                              detail=f"{clip(module, 100)}.{clip(name, 100)} is not a class defined there")
        self._resolved.add(id(obj))
        self._fixed.add(id(obj))
        return obj

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is not int or not 0 <= pid < len(self._objects):
            raise DecodeError("malformed pickled object")
        return self._objects[pid]

    def _charge(self, *things: Any) -> None:
        cost = 1
        for thing in things:
            try:
                cost += len(thing)
            except TypeError:
                cost += 1
        self._budget -= cost
        if self._budget < 0:
            raise DecodeError("a pickled object asks for more work than its size allows")

    def _callable(self, func: Any) -> None:
        if id(func) not in self._resolved:
            raise DecodeError("a pickled object calls something it did not name")

    def load_reduce(self) -> None:
        args = self.stack[-1]
        self._callable(self.stack[-2])
        if type(args) is not tuple:
            raise DecodeError("malformed pickled object")
        self._charge(*args)
        super().load_reduce()

    def load_newobj(self) -> None:
        self._callable(self.stack[-2])
        self._charge(*self.stack[-1])
        super().load_newobj()

    def load_newobj_ex(self) -> None:
        self._callable(self.stack[-3])
        self._charge(*self.stack[-2], self.stack[-1])
        super().load_newobj_ex()

    def _instantiate(self, klass: Any, args: list) -> None:
        self._callable(klass)
        self._charge(*args)
        super()._instantiate(klass, args)

    def load_build(self) -> None:
        self._charge(self.stack[-1])
        super().load_build()

    def load_bytearray8(self) -> None:
        size, = struct.unpack("<Q", self.read(8))
        if size > self._size:
            raise DecodeError("malformed pickled object")
        data = bytearray(size)
        self.readinto(data)
        self.append(data)

    def load_persid(self) -> None:
        raise DecodeError("malformed pickled object")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8
    dispatch[pickle.PERSID[0]] = load_persid


def _guard_mutation(opcode: int, load: Callable[[_Unpickler], None]) -> Callable[[_Unpickler], None]:
    """The opcode's handler, refusing when its target is something resolved or carried."""
    # BUILD, APPEND and SETITEM have their argument(s) above the target; the mark-based ones
    # (APPENDS, SETITEMS, ADDITEMS) have the target just below the mark.
    above = {pickle.BUILD[0]: 1, pickle.APPEND[0]: 1, pickle.SETITEM[0]: 2}.get(opcode)

    def guarded(self: _Unpickler) -> None:
        target = self.stack[-1 - above] if above is not None else (self.metastack[-1][-1] if self.metastack
                                                                    and self.metastack[-1] else None)
        if target is not None and (id(target) in self._fixed or isinstance(target, type)):
            raise DecodeError("a pickled object changes something it did not build")
        load(self)
    return guarded


for _op in _MUTATING:
    _Unpickler.dispatch[_op] = _guard_mutation(_op, _Unpickler.dispatch[_op])


def loads(data: bytes, objects: list[Any], allowed: Allowed) -> Any:
    """Unpickle ``data`` as described above; anything refused or malformed is a ``DecodeError``."""
    try:
        return _Unpickler(data, allowed, objects).load()
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("a pickled object nests too deeply") from None
    except Exception as exc:  # noqa: BLE001 - anything else the stream provokes is malformed input
        raise DecodeError("malformed pickled object", detail=type(exc).__name__) from None


def first_class(data: bytes) -> str | None:
    """The first class a pickle stream names, if found within its first opcodes (for this party's
    own messages about a refused value; the stream is only parsed, nothing is resolved)."""
    strings: list[str] = []
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(io.BytesIO(data))):
            if count > 200:
                return None
            if isinstance(arg, str) and op.name.endswith("UNICODE"):
                strings.append(arg)
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                return f"{strings[-2]}.{strings[-1]}"
            elif op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                return arg.replace(" ", ".")
    except Exception:  # noqa: BLE001 - a malformed stream names nothing
        return None
    return None


def loads_unsafe(data: bytes, objects: list[Any]) -> Any:
    """Plain unpickling (``allow_unsafe_deserialization``): runs whatever the sender chose."""
    unpickler = pickle.Unpickler(io.BytesIO(data))
    unpickler.persistent_load = lambda pid: objects[pid]
    return unpickler.load()
