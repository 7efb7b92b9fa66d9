"""Fresh installs: the README's quick-start command on a copy of the checkout, and the two-party API
on the oldest Ray that pyproject.toml declares and on Ray 2.42 (what RayFed 0.2's users pin).

Each gets a virtualenv of its own with nothing but what ``pip install`` of the project brings (pip's
cache may serve the downloads). The three installs run at once, in one fixture, so the module
costs about one install (a minute here with a warm cache) plus the runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import ROOT, addresses, assert_ok, run_script

from fed._cli.sessions import kill_session

OLD_RAYS = ("oldest", "2.42.0")
_INSTALL_S = 900


def readme_quick_start() -> str:
    """The one command in the README's quick-start section."""
    section = (ROOT / "README.md").read_text().split("## Quick start", 1)[1]
    return re.search(r"```shell\n(.+?)\n```", section, re.S).group(1).strip()


def oldest_ray() -> str:
    """The lowest Ray that pyproject.toml accepts (``ray>=X``)."""
    return re.search(r'"ray>=([0-9.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)


def _copy_checkout(dst: Path) -> Path:
    """The source tree without what a run leaves (virtualenvs, caches, build output)."""
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    return dst


def _clean_env() -> dict[str, str]:
    """This environment without the suite's virtualenv or PYTHONPATH: a shell on a fresh machine."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def _shell(command: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", command], cwd=cwd, env=_clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen, deadline: float) -> tuple[int | None, str]:
    """Its exit code and output; on time out SIGTERM (``fed run`` stops its parties), then kill."""
    try:
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            out = ""
        return None, out
    finally:
        kill_session(proc.pid)


@pytest.fixture(scope="module")
def installs(tmp_path_factory):
    """Start the three at once: the README command in a copy of the checkout, and a virtualenv
    with each older Ray. Maps ``readme`` and each Ray version to (exit code, output, venv)."""
    base = tmp_path_factory.mktemp("installs")
    versions = [oldest_ray() if v == "oldest" else v for v in OLD_RAYS]
    started = {"readme": (_shell(readme_quick_start(), _copy_checkout(base / "readme")), base / "readme" / ".venv")}
    for version in versions:
        src = _copy_checkout(base / f"src-{version}")
        venv = base / f"ray-{version}"
        started[version] = (_shell(f"python3 -m venv {venv} && {venv}/bin/pip install -q {src} 'ray=={version}'",
                                   base), venv)
    deadline = time.monotonic() + _INSTALL_S
    return {name: (*_finish(proc, deadline), venv) for name, (proc, venv) in started.items()}


@pytest.mark.timeout(_INSTALL_S + 120)
def test_readme_quick_start_command_works_on_a_fresh_virtualenv(installs):
    command = readme_quick_start()
    assert "pip install" in command and "fed run" in command and "[" not in command, command  # no extras

    code, out, venv = installs["readme"]

    assert code == 0, out[-6000:]
    assert "[alice] The result in party alice is 5" in out
    assert "[bob] The result in party bob is 5" in out
    installed = subprocess.run([venv / "bin" / "python", "-c", "import fed; print(fed.__file__)"], env=_clean_env(),
                               capture_output=True, text=True, check=True, cwd="/").stdout
    assert "site-packages" in installed  # the installed copy ran, not a checkout on the path


@pytest.mark.timeout(_INSTALL_S + 300)
@pytest.mark.parametrize("which", OLD_RAYS)
def test_two_party_api_on_an_older_ray(installs, which):
    version = oldest_ray() if which == "oldest" else which
    code, out, venv = installs[version]
    assert code == 0, out[-6000:]
    python = str(venv / "bin" / "python")
    found = subprocess.run([python, "-c", "import ray; print(ray.__version__)"], capture_output=True, text=True,
                           check=True, env=_clean_env(), cwd="/").stdout.strip()
    assert found.split(".")[:len(version.split("."))] == version.split("."), found  # 2.10 is 2.10.0

    parties = run_script("api_features.py", addresses("alice", "bob"), python=python)

    assert_ok(parties)
    assert "alice FEATURES OK" in parties["alice"].output
    assert "bob FEATURES OK" in parties["bob"].output
