"""Tests for the `fed` command line: `fed run` supervision and `fed certs`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import fed._cli.main
from fed._cli.main import main

REPO_ROOT = Path(fed._cli.main.__file__).resolve().parents[2]

HELLO = """
import sys
print(f"hello from {sys.argv[1]} {sys.argv[2:]}")
print("to stderr", file=sys.stderr)
"""

# alice records her pid and sleeps; bob fails as soon as alice is up.
BOB_FAILS = """
import os, sys, time
pid_file = sys.argv[2]
if sys.argv[1] == "alice":
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(pid_file + ".tmp", pid_file)
    time.sleep(60)
else:
    deadline = time.monotonic() + 10
    while not os.path.exists(pid_file) and time.monotonic() < deadline:
        time.sleep(0.02)
    sys.exit(3)
"""

# Each party leaves a grandchild behind and exits 0.
LEAVES_CHILD = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(f"{sys.argv[2]}/{sys.argv[1]}.pid", "w") as f:
    f.write(str(child.pid))
"""


def _script(tmp_path: Path, source: str) -> str:
    path = tmp_path / "party.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def _wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # an orphan killed but not yet reaped by init is a zombie
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_run_prefixes_each_party_output_and_passes_arguments(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = _script(tmp_path, HELLO)

    code = main(["run", "--parties", "alice,bob", script, "x", "--flag"])

    out = capfd.readouterr().out.splitlines()
    assert code == 0
    assert "[alice] hello from alice ['x', '--flag']" in out
    assert "[bob] hello from bob ['x', '--flag']" in out
    assert out.count("[alice] to stderr") == out.count("[bob] to stderr") == 1


# A line printed unbuffered goes out as its text, then its newline; a log line to stderr between
# the two must not end up inside it.
SPLIT_LINE = """
import sys
sys.stdout.write("the text"); sys.stdout.flush()
print("a log line", file=sys.stderr, flush=True)
sys.stdout.write("\\n"); sys.stdout.flush()
"""


@pytest.mark.parametrize("single", [False, True])
def test_run_keeps_a_line_whole_when_stderr_writes_in_the_middle_of_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], single: bool
):
    script = _script(tmp_path, SPLIT_LINE)

    code = main(["run", *(["--single"] if single else []), "--parties", "alice", script])

    out = capfd.readouterr().out.splitlines()
    prefix = "" if single else "[alice] "
    assert code == 0
    assert f"{prefix}the text" in out and f"{prefix}a log line" in out, out


def test_run_stops_the_others_when_one_party_fails(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = _script(tmp_path, BOB_FAILS)
    pid_file = tmp_path / "alice.pid"
    started = time.monotonic()

    code = main(["run", "--parties", "alice,bob", script, str(pid_file)])

    elapsed = time.monotonic() - started
    assert code == 3
    assert elapsed < 15
    out = capfd.readouterr().out
    assert "fed run: party bob exited with code 3; stopping alice" in out
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_run_kills_processes_a_party_left_behind(tmp_path: Path) -> None:
    script = _script(tmp_path, LEAVES_CHILD)

    code = main(["run", "--parties", "alice,bob", script, str(tmp_path)])

    pids = [int((tmp_path / f"{party}.pid").read_text()) for party in ("alice", "bob")]
    deadline = time.monotonic() + 5
    while any(map(_is_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert code == 0
    assert not any(map(_is_running, pids))


@pytest.mark.parametrize("sigint", [signal.SIG_DFL, signal.SIG_IGN], ids=["from_a_terminal", "in_the_background"])
def test_sigterm_to_the_launcher_interrupts_every_party(tmp_path: Path, sigint) -> None:
    # A launcher started in the background of a shell starts with SIGINT ignored; its parties
    # must still get the SIGINT that stops them.
    script = _script(tmp_path, BOB_FAILS)
    pid_file = tmp_path / "alice.pid"
    launcher = subprocess.Popen(
        [sys.executable, "-c", "from fed._cli.main import console; console()"]
        + ["run", "--parties", "alice", script, str(pid_file)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )
    alice_pid = int(_wait_for_file(pid_file))

    launcher.send_signal(signal.SIGTERM)
    output, _ = launcher.communicate(timeout=15)

    assert launcher.returncode == 130
    assert b"[alice] KeyboardInterrupt" in output
    with pytest.raises(ProcessLookupError):
        os.kill(alice_pid, 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--parties", "", "{script}"], "at least one party"),
        (["run", "--parties", "alice,alice", "{script}"], "duplicate party 'alice'"),
        (["run", "--parties", "alice", "{missing}"], "script not found"),
        (["run", "--single", "--parties", "alice", "{missing}"], "script not found"),
        (["run", "--parties", "alice"], "required: script"),
        (["certs", "--parties", "alice,b/ob", "--out", "{out}"], "'b/ob'"),
        (["certs", "--parties", "alice", "--out", "{out}", "--days", "0"], "days"),
    ],
)
def test_usage_errors_exit_with_code_2(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    paths = {
        "script": _script(tmp_path, HELLO),
        "missing": str(tmp_path / "missing.py"),
        "out": str(tmp_path / "certs"),
    }

    code = main([arg.format(**paths) for arg in argv])

    captured = capfd.readouterr()
    assert code == 2
    assert message in captured.err
    assert captured.out == ""


def test_certs_writes_files_and_prints_each_tls_config(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"

    code = main(["certs", "--parties", "alice,bob,carol", "--out", str(out)])

    printed = capfd.readouterr().out
    assert code == 0
    assert {path.name for path in out.iterdir()} == {
        f"{name}.{ext}"
        for name in ("ca", "alice", "bob", "carol")
        for ext in ("crt", "key")
    }
    bob = {
        "ca_cert": str(out / "ca.crt"),
        "cert": str(out / "bob.crt"),
        "key": str(out / "bob.key"),
    }
    assert f"bob: tls_config={bob!r}" in printed
