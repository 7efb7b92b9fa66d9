"""``clip``: a peer's text made safe for a log line or an error, exactly as documented."""

from __future__ import annotations

import pytest

from fed._security.untrusted import LIMIT, clip


@pytest.mark.parametrize("text, shown", [
    ("alice", "alice"),
    ("a b~", "a b~"),                       # printable ASCII stays, space and tilde included
    ("line\nforged", "line\\x0aforged"),    # a newline cannot start a log line of its own
    ("\r\t\x00\x1f\x7f", "\\x0d\\x09\\x00\\x1f\\x7f"),
    ("back\\slash", "back\\\\slash"),       # so an escape in the output is always fed's
    ("é", "\\xe9"), ("\xff", "\\xff"), ("\u0100", "\\u0100"), ("\uffff", "\\uffff"),
    ("\U00010000", "\\U00010000"), ("\u2028", "\\u2028"), ("\U0001f600", "\\U0001f600"), ("\udc80", "\\udc80"),
])
def test_every_character_outside_printable_ascii_is_escaped(text, shown):
    assert clip(text) == shown


def test_a_text_is_cut_at_its_limit_and_says_how_long_it_was():
    assert LIMIT == 200
    assert clip("x" * 200) == "x" * 200
    assert clip("x" * 201) == "x" * 200 + "...(201 chars)"
    assert clip("ab\n" * 10, 4) == "ab\\x0aa...(30 chars)"
    assert clip("abcd", 4) == "abcd"


@pytest.mark.parametrize("value, shown", [(None, "<NoneType>"), (b"bytes", "<bytes>"), (2**20000, "<int>"),
                                          (["a" * 10**6], "<list>")], ids=["none", "bytes", "huge_int", "list"])
def test_a_value_that_is_not_a_str_shows_only_its_type(value, shown):
    assert clip(value) == shown
