"""``@fed.remote``: functions, classes and actor methods bound to a party, dispatched per call."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import ray

from fed._runtime import context
from fed._runtime.base import RuntimeBase
from fed._runtime.objects import FedObject


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _check_num_returns(options: dict[str, Any]) -> int:
    n = options.get("num_returns", 1)
    if type(n) is not int or n < 0:
        raise ValueError(f"fed supports an int num_returns >= 0, got {n!r}")
    return n


def _fed_objects(runtime: RuntimeBase, owner: str, call_id: int, fingerprint: str, n: int, refs: Any) -> Any:
    """Wrap the return value(s) of a call like Ray does: one object, a list of n, or None."""
    if n == 0:
        return None
    if n == 1:
        return FedObject(owner, call_id, 0, fingerprint, refs, runtime.session)
    refs = refs if refs is not None else [None] * n
    return [FedObject(owner, call_id, i, fingerprint, ref, runtime.session) for i, ref in enumerate(refs)]


class Outputs:
    """The FedObjects a call returns, filled with the ObjectRef(s) Ray gives for it."""

    __slots__ = ("objects", "_n")

    def __init__(self, objects: list[FedObject], n: int) -> None:
        self.objects = objects
        self._n = n

    def fill(self, refs: Any) -> None:
        if self._n == 1:
            self.objects[0]._ref = refs
        elif self._n > 1:
            for obj, ref in zip(self.objects, refs):
                obj._ref = ref


def _outputs(objects: Any, n: int) -> Outputs:
    return Outputs([] if n == 0 else [objects] if n == 1 else objects, n)


class _Lazy:
    """The ``ray.remote`` wrapper of a function or class, made once and shared by all bindings."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self._remote: Any = None

    def get(self) -> Any:
        if self._remote is None:
            self._remote = ray.remote(self.target)
        return self._remote


class _Bindable:
    """Shared by functions and classes: ``.party()`` and ``.options()`` return new bindings."""

    def __init__(self, lazy: _Lazy, party: str | None = None, options: dict[str, Any] | None = None) -> None:
        self._lazy = lazy
        self._party = party
        self._options = dict(options or {})

    def party(self, party: str):
        """The same remote object, bound to run at ``party``."""
        return type(self)(self._lazy, party, self._options)

    def options(self, **options: Any):
        """The same remote object with Ray options (validated by Ray, e.g. ``num_cpus``)."""
        merged = {**self._options, **options}
        _check_num_returns(merged)
        self._lazy.get().options(**merged)  # Ray rejects unknown or invalid options here
        return type(self)(self._lazy, self._party, merged)

    def _start_call(self, args: tuple, kwargs: dict) -> tuple[RuntimeBase, str, int, str, tuple, dict]:
        """Check the party, handle the arguments (``RuntimeBase.arguments``), then number the call."""
        if self._party is None:
            name = self._lazy.target.__name__
            raise ValueError(f"say which party runs it: {name}.party('alice').remote(...)")
        runtime = context.current()
        runtime.check_party(self._party)
        name, party = _qualname(self._lazy.target), self._party
        args, kwargs = runtime.arguments(args, kwargs, party)
        call_id, fingerprint = runtime.new_call(lambda call_id: f"{name}@{party}#{call_id}")
        return runtime, party, call_id, fingerprint, args, kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self._lazy.target.__name__
        raise TypeError(
            f"{name} is a fed remote {'class' if inspect.isclass(self._lazy.target) else 'function'} "
            f"and cannot be called directly; use {name}.party('alice').remote(...)"
        )


class FedRemoteFunction(_Bindable):
    """A function decorated with ``@fed.remote``.

    >>> @fed.remote
    ... def add(a, b):
    ...     return a + b
    >>> total = add.party('bob').remote(x, y)   # doctest: +SKIP
    """

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function at its party; returns FedObject(s) like Ray returns ObjectRef(s)."""
        n = _check_num_returns(self._options)
        runtime, party, call_id, fingerprint, args, kwargs = self._start_call(args, kwargs)
        objects = _fed_objects(runtime, party, call_id, fingerprint, n, None)
        if runtime.runs_here(party):
            fn, options = self._lazy.get(), runtime.placement(party, self._options)
            task = fn.options(**options) if options else fn
            runtime.submit(party, lambda a, k: task.remote(*a, **k), args, kwargs, _outputs(objects, n))
        return objects


class FedRemoteClass(_Bindable):
    """A class decorated with ``@fed.remote``; ``.party(p).remote(...)`` creates an actor at ``p``."""

    def remote(self, *args: Any, **kwargs: Any) -> FedActorHandle:
        """Create the actor at its party and return its handle (usable at every party)."""
        runtime, party, call_id, fingerprint, args, kwargs = self._start_call(args, kwargs)
        handle = FedActorHandle(self._lazy.target, party, call_id, None, runtime.session)
        if runtime.runs_here(party):
            cls = self._lazy.get()
            options = runtime.placement(party, {k: v for k, v in self._options.items() if k != "num_returns"},
                                        actor=True)
            made = cls.options(**options) if options else cls

            def create(a: tuple, k: dict) -> Any:
                handle._ray_handle = made.remote(*a, **k)
            runtime.submit(party, create, args, kwargs, Outputs([], 0), actor=handle)
        return handle


class FedActorHandle:
    """An actor created by ``FedRemoteClass.remote``; its methods are called with ``.remote()``.

    >>> counter = Counter.party('alice').remote(0)   # doctest: +SKIP
    >>> fed.get(counter.add.remote(1))               # doctest: +SKIP
    1
    """

    def __init__(self, cls: type, owner: str, call_id: int, ray_handle: Any, session: int = 0) -> None:
        self._cls = cls
        self.owner = owner
        self.session = session
        self.call_id = call_id
        self._ray_handle = ray_handle
        self._made: Any = None  # the last of its calls (or its creation) held back: a later call waits behind it

    def __getattr__(self, name: str) -> FedActorMethod:
        if name.startswith("_") or not callable(getattr(self._cls, name, None)):
            raise AttributeError(f"{self._cls.__name__} has no method {name!r}")
        return FedActorMethod(self, name)

    def __repr__(self) -> str:
        return f"FedActorHandle({self._cls.__name__} at {self.owner!r})"


class FedActorMethod:
    """One method of a fed actor, with its own ``.options()``."""

    def __init__(self, actor: FedActorHandle, name: str, options: dict[str, Any] | None = None) -> None:
        self._actor = actor
        self._name = name
        self._options = dict(options or {})

    def options(self, **options: Any) -> FedActorMethod:
        """The same method with Ray actor-method options (e.g. ``num_returns``)."""
        merged = {**self._options, **options}
        _check_num_returns(merged)
        return FedActorMethod(self._actor, self._name, merged)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Call the method at the actor's party; returns FedObject(s)."""
        actor = self._actor
        runtime = context.current()
        runtime.check_session(actor)
        name = f"{_qualname(actor._cls)}.{self._name}"
        n = _check_num_returns(self._options)
        args, kwargs = runtime.arguments(args, kwargs, actor.owner)
        call_id, fingerprint = runtime.new_call(lambda call_id: f"{name}@{actor.owner}#{call_id}")
        objects = _fed_objects(runtime, actor.owner, call_id, fingerprint, n, None)
        if runtime.runs_here(actor.owner):
            name, options = self._name, self._options

            def call(a: tuple, k: dict) -> Any:  # the handle is looked up when the call is given to Ray
                method = getattr(actor._ray_handle, name)
                return (method.options(**options) if options else method).remote(*a, **k)
            runtime.submit(actor.owner, call, args, kwargs, _outputs(objects, n), actor=actor)
        return objects

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"actor methods cannot be called directly; use .{self._name}.remote(...)")


def remote(*args: Any, **options: Any) -> Any:
    """Decorate a function or class so it can run at a party: ``@fed.remote`` or ``@fed.remote(num_cpus=1)``.

    >>> @fed.remote
    ... class Counter:
    ...     def __init__(self, start):
    ...         self.n = start
    ...     def add(self, k):
    ...         self.n += k
    ...         return self.n
    """
    def wrap(target: Callable) -> Any:
        kind = FedRemoteClass if inspect.isclass(target) else FedRemoteFunction
        if not callable(target):
            raise TypeError(f"@fed.remote decorates a function or a class, not {target!r}")
        bound = kind(_Lazy(target))
        return bound.options(**options) if options else bound

    if len(args) == 1 and not options and callable(args[0]):
        return wrap(args[0])
    if args:
        raise TypeError("use @fed.remote or @fed.remote(**ray_options)")
    return wrap
