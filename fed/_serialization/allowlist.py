"""The restricted unpickler: values from peers may only name constructors on an allow-list."""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable, Mapping
from typing import Any

# Constructors that build data and run no code chosen by the sender.
DEFAULT_ALLOWED: dict[str, frozenset[str]] = {
    "builtins": frozenset({
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "range", "set", "slice", "str", "tuple", "NoneType", "Ellipsis", "NotImplemented",
    }),
    "collections": frozenset({"OrderedDict", "deque", "Counter"}),
    "datetime": frozenset({"date", "datetime", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
    "uuid": frozenset({"UUID"}),
    # numpy 1.x and 2.x spell their private reconstruction helpers under different modules.
    "numpy": frozenset({"ndarray", "dtype", "bool_", "int8", "int16", "int32", "int64", "uint8",
                        "uint16", "uint32", "uint64", "float16", "float32", "float64",
                        "complex64", "complex128", "str_", "bytes_", "datetime64", "timedelta64"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy.core.numeric": frozenset({"_frombuffer"}),
    "numpy._core.numeric": frozenset({"_frombuffer"}),
    "numpy.dtypes": frozenset({"*"}),
    "fed._exceptions": frozenset({"FedRemoteError"}),
    "fed._serialization.tensors": frozenset({"rebuild_tensor"}),  # torch tensors as numpy data
}


class RefusedValueError(pickle.UnpicklingError):
    """A value named a constructor that is not on the allow-list."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        super().__init__(
            f"refused to unpickle {module}.{name}: it is not on the allow-list. If the sending "
            f"party is trusted to send it, add {{'{module}': ['{name}']}} to "
            "cross_silo_comm['serializing_allowed_list'] at the receiving party"
        )


def merge_allowed(extra: Mapping[str, Iterable[str]] | None) -> dict[str, frozenset[str]]:
    """The default allow-list plus the user's ``serializing_allowed_list``."""
    merged = dict(DEFAULT_ALLOWED)
    for module, names in (extra or {}).items():
        merged[module] = merged.get(module, frozenset()) | frozenset(names)
    return merged


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, allowed: Mapping[str, frozenset[str]], buffers: list) -> None:
        super().__init__(file, buffers=buffers)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        names = self._allowed.get(module)
        if names is None or not ("*" in names or name in names):
            raise RefusedValueError(module, name)
        return super().find_class(module, name)


def restricted_loads(data: memoryview, buffers: list, allowed: Mapping[str, frozenset[str]]) -> Any:
    """Unpickle ``data`` with out-of-band ``buffers``, refusing constructors not in ``allowed``."""
    return _RestrictedUnpickler(io.BytesIO(data), allowed, buffers).load()
