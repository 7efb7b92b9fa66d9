"""fed's hook for uncaught exceptions chains to the application's and goes away at uninstall."""

from __future__ import annotations

import sys

from fed._runtime import excepthook


def test_the_hook_records_then_calls_the_previous_hook_and_uninstall_restores_it(monkeypatch):
    seen = []

    def user_hook(exc_type, exc, tb):
        seen.append(("user", exc_type.__name__))

    monkeypatch.setattr(sys, "excepthook", user_hook)
    excepthook.install(lambda exc: seen.append(("fed", type(exc).__name__)))
    try:
        sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
        assert seen == [("fed", "KeyboardInterrupt"), ("user", "KeyboardInterrupt")]
    finally:
        excepthook.uninstall()
    assert sys.excepthook is user_hook


def test_installing_twice_keeps_one_link_in_the_chain(monkeypatch):
    calls = []
    monkeypatch.setattr(sys, "excepthook", lambda *a: calls.append("user"))
    excepthook.install(lambda exc: calls.append("first"))
    excepthook.install(lambda exc: calls.append("second"))  # a second fed.init after shutdown was missed
    try:
        sys.excepthook(ValueError, ValueError(), None)
    finally:
        excepthook.uninstall()
    assert calls == ["second", "user"]


def test_uninstall_leaves_a_hook_the_application_set_later(monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    excepthook.install(lambda exc: None)

    def later(*args):
        pass

    sys.excepthook = later
    excepthook.uninstall()
    assert sys.excepthook is later
