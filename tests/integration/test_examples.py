"""The examples at small sizes, across real parties (fed run) and in one process (fed run --single):
both modes must print the same numbers."""

from __future__ import annotations

import ast
import re

from harness import free_port_range, run_fed

FEDAVG = ["server", "client1", "client2", "client3"]


def results(output: str, pattern: str, party: str | None = None) -> list[str]:
    """Lines matching ``pattern``; with ``party``, only that party's (``[party] line``), unprefixed."""
    found = []
    for line in output.splitlines():
        if party is not None:
            if not line.startswith(f"[{party}] "):
                continue
            line = line[len(party) + 3:]
        if re.match(pattern, line):
            found.append(line)
    return found


def both_modes(parties: list[str], script: str, *args: str, timeout: float = 300) -> tuple[str, str]:
    """Run ``script`` with ``args`` across ``parties`` and in single-controller mode; both outputs."""
    names = ",".join(parties)
    code, multi = run_fed("run", "--parties", names, script, *args, "--port", str(free_port_range(len(parties))),
                          timeout=timeout)
    assert code == 0, multi
    code, single = run_fed("run", "--single", "--parties", names, script, *args, timeout=timeout)
    assert code == 0, single
    return multi, single


def test_fedavg_learns_and_gives_the_same_accuracies_in_both_modes(tmp_path):
    multi, single = both_modes(FEDAVG, "examples/fedavg/fedavg.py", "--rounds", "4",
                               "--plot", str(tmp_path / "accuracy.png"))

    rounds = results(single, r"round +\d+: held-out accuracy")
    assert len(rounds) == 4, single
    for party in FEDAVG:  # every party prints what the server measured, the same as one process
        assert results(multi, r"round +\d+: held-out accuracy", party) == rounds, multi
    accuracies = [float(line.split()[-1]) for line in rounds]
    assert accuracies[-1] > 0.9 and accuracies[-1] > accuracies[0], accuracies
    png = (tmp_path / "accuracy.png").read_bytes()  # written by the server's task, in both runs
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_split_learning_trains_on_activations_and_gradients_only():
    multi, single = both_modes(["alice", "bob"], "examples/split_learning/split_learning.py", "--epochs", "3")

    lines = results(single, r"(epoch +\d+: training loss|test accuracy)")
    assert len(lines) == 4, single
    for party in ("alice", "bob"):
        assert results(multi, r"(epoch +\d+: training loss|test accuracy)", party) == lines, multi
    losses = [float(line.split()[-1]) for line in lines[:3]]
    assert losses[0] > losses[1] > losses[2], losses
    assert float(lines[-1].split()[-1]) > 0.7, lines
    # What left each party (its audit log): alice only her bottom layer's activations, bob only
    # gradients for them and the numbers both print; no raw features, no labels.
    sent = {p: ast.literal_eval(results(multi, rf"{p} sent: ", p)[0].split("sent: ", 1)[1]) for p in ("alice", "bob")}
    assert set(sent["alice"]) == {"__main__.Bottom.forward"}, sent
    assert set(sent["bob"]) == {"__main__.Top.step", "__main__.Top.epoch_loss", "__main__.Top.accuracy"}, sent


def test_secure_aggregation_masks_every_input_and_sums_exactly():
    multi, single = both_modes(FEDAVG, "examples/secure_aggregation/secure_aggregation.py",
                               "--size", "10000", "--verify")

    total = results(single, r"sum of 3 updates")
    assert len(total) == 1, single
    for party in FEDAVG:  # the same sum (its digest too) across parties as in one process
        assert results(multi, r"sum of 3 updates", party) == total, multi
    for out, party in ((single, None), (multi, "server")):
        verdict = results(out, r"verify: ", party)
        assert verdict == ["verify: largest share of a masked input's coordinates equal to its update: 0.0000; "
                           "sum exact: True"], out
