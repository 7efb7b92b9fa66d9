"""fed.get returns every type fed's codec carries unchanged, across real parties and in
single-controller mode (which crosses values through the same codec)."""

from __future__ import annotations

import json
import re

from harness import SCRIPTS, addresses, assert_ok, run_fed, run_script


def bad_names(output: str, party: str) -> list[str]:
    found = re.search(rf"{party} TYPES (\d+) BAD \[(.*)\]", output)
    assert found and int(found.group(1)) > 60, output[-3000:]
    return [name.strip(" '") for name in found.group(2).split(",") if name.strip()]


def test_every_type_crosses_between_real_parties_unchanged():
    parties = run_script("carried_types.py", addresses("alice", "bob"))

    assert_ok(parties)
    for name in ("alice", "bob"):
        assert bad_names(parties[name].output, name) == []


def test_every_type_crosses_unchanged_in_single_controller_mode():
    code, out = run_fed("run", "--single", "--parties", "alice,bob", str(SCRIPTS / "carried_types.py"),
                        json.dumps(addresses("alice", "bob")))

    assert code == 0, out[-3000:]
    assert bad_names(out, "alice") == []
