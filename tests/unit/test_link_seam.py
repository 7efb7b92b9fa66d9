"""The transport's seam: only the gRPC link imports grpc, and the policy modules import no link."""

from __future__ import annotations

import ast
from pathlib import Path

import fed

FED = Path(fed.__file__).parent
POLICY = ["sender.py", "receiver.py", "liveness.py", "admission.py", "mailbox.py", "pushed.py", "awaited.py",
          "wire.py", "call_log.py", "link.py", "sender_host.py"]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_one_module_of_fed_imports_grpc():
    importers = sorted(str(p.relative_to(FED)) for p in FED.rglob("*.py")
                       if any(name == "grpc" or name.startswith("grpc.") for name in imports(p)))
    assert importers == ["_transport/grpc_link.py"]


def test_the_policy_imports_no_link_but_the_interface():
    for name in POLICY:
        links = {i for i in imports(FED / "_transport" / name)
                 if i.startswith(("fed._transport.grpc_link", "fed._transport.memory_link"))}
        assert not links, f"{name} imports {links}"


def test_the_transport_imports_nothing_of_the_runtime():
    for path in (FED / "_transport").glob("*.py"):
        runtime = {i for i in imports(path) if i.startswith("fed._runtime")}
        assert not runtime, f"{path.name} imports {runtime}"


def test_every_link_named_in_the_registry_has_both_ends():
    import importlib

    from fed._transport import link

    for name, module in link.LINKS.items():
        loaded = importlib.import_module(module)
        assert callable(loaded.outbound) and callable(loaded.serve), name
