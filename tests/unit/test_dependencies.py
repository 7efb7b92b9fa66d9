"""Every module fed imports is either the standard library, fed itself, or a declared dependency
(the README's quick start installs nothing else); optional ones are imported only where used."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
# Import name -> distribution name, where they differ.
DISTRIBUTION = {"grpc": "grpcio"}
OPTIONAL = {"torch"}  # fed carries tensors when the program has torch; it never needs it itself
EXTRAS = {"zstandard": "compression"}  # needed only for a feature, installed with its extra


def declared() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    return {re.match(r"[A-Za-z0-9_.-]+", line.strip().strip('"')).group(0).lower()
            for line in block.splitlines() if line.strip().startswith('"')}


def imports() -> dict[str, list[tuple[str, bool]]]:
    """Top-level module name -> (file, imported at module level?) for every import in fed/."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted((ROOT / "fed").rglob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append((str(path.relative_to(ROOT)), id(node) in top))
    return found


def test_every_third_party_import_is_a_declared_dependency():
    third_party = {m for m in imports() if m not in sys.stdlib_module_names and m != "fed"}
    required = {DISTRIBUTION.get(m, m) for m in third_party - OPTIONAL - set(EXTRAS)}

    assert required <= declared(), f"imported but not in pyproject's dependencies: {required - declared()}"
    assert {"ray", "grpcio", "numpy", "msgpack", "cryptography"} <= required  # the scan finds imports


def test_a_feature_s_dependency_is_in_its_extra_and_in_the_test_extra():
    text = (ROOT / "pyproject.toml").read_text()
    for module, extra in EXTRAS.items():
        assert module in imports()  # the scan finds it
        for name in (extra, "test"):
            block = re.search(rf"^{name} = \[(.*?)^\]", text, re.S | re.M)
            assert block and f'"{module}' in block.group(1), f"{module} is not in the {name!r} extra"


def test_optional_modules_are_never_imported_at_module_level():
    found = imports()
    at_top = [(m, f) for m in OPTIONAL | set(EXTRAS) for f, top in found.get(m, []) if top]

    assert not at_top, f"an optional module imported when fed is: {at_top}"
