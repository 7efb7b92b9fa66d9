"""The edges of what fed's decoder accepts: each limit admits its last value and refuses the next,
and each malformed part is refused by its own builder in its own words (not by a constructor's
exception further down). Written against the survivors of a mutation run over the decoder."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions

import msgpack
import pytest
from codec_payloads import M, one, raw

from fed._serialization import codec, records, tags
from fed._serialization.decoder import MAX_COLLIDING_KEYS
from fed._serialization.encoder import MAX_DECIMAL_CHARS, MAX_INT_BYTES
from fed._serialization.errors import DecodeError
from fed._serialization.policy import Policy

P = msgpack.packb
TD = [M[tags.TIMEDELTA], 0, 3600, 0]


def decode(segments, copied=()):
    return codec.decode(segments, Policy(), copied)


def refused_exactly(segments, message, copied=()):
    with pytest.raises(DecodeError) as info:
        decode(segments, copied)
    assert str(info.value) == message
    return info.value


# (tag, fed's word for it, a valid list of parts)
VALID = {
    "bytearray": (tags.BYTEARRAY, "bytearray", [b"ab"]),
    "int": (tags.BIG_INT, "int", [b"\x01" * 9]),
    "complex": (tags.COMPLEX, "complex", [1.0, 2.0]),
    "Decimal": (tags.DECIMAL, "Decimal", ["1.5"]),
    "Fraction": (tags.FRACTION, "Fraction", [3, 4]),
    "datetime": (tags.DATETIME, "datetime", [2000, 1, 2, 3, 4, 5, 6, 0, None]),
    "date": (tags.DATE, "date", [2000, 1, 2]),
    "time": (tags.TIME, "time", [3, 4, 5, 6, 0, None]),
    "timedelta": (tags.TIMEDELTA, "timedelta", [1, 2, 3]),
    "time zone": (tags.TIMEZONE, "time zone", [TD, "X"]),
    "UUID": (tags.UUID, "UUID", [b"\x00" * 16]),
    "range": (tags.RANGE, "range", [0, 10, 2]),
    "slice": (tags.SLICE, "slice", [None, 10, 2]),
    "error value": (tags.REMOTE_ERROR, "error value", ["alice", "ValueError", None]),
    "registered type": (tags.REGISTERED, "registered type", ["x", 1]),
    "pickled object": (tags.PICKLED, "pickled object", [b"", []]),
    "str": (tags.STR, "str", [1]),
    "bytes": (tags.BYTES, "bytes", [1]),
    "Ellipsis": (tags.ELLIPSIS, "Ellipsis", []),
}


CHANGES = [(name, change) for name in sorted(VALID) for change in ("one_part_short", "one_part_too_many")
           if VALID[name][2] or change != "one_part_short"]  # Ellipsis has no part to leave out


@pytest.mark.parametrize("name, change", CHANGES)
def test_a_tagged_value_with_the_wrong_number_of_parts_is_refused_by_its_builder(name, change):
    tag, what, parts = VALID[name]
    parts = parts[:-1] if change == "one_part_short" else [*parts, 0]

    refused_exactly(one([M[tag], *parts]), f"malformed {what}")


# every integer field of every tag, in turn, given a str, a float, a bool and None (None only where
# the field takes no None)
INT_FIELDS = {name: [i for i, v in enumerate(parts) if type(v) is int]
              for name, (tag, what, parts) in VALID.items() if name not in ("str", "bytes", "registered type")}
WRONG = ["7", 7.0, True, None]


@pytest.mark.parametrize("name, field", [(n, i) for n, fields in sorted(INT_FIELDS.items()) for i in fields])
@pytest.mark.parametrize("wrong", WRONG, ids=repr)
def test_every_int_field_takes_only_an_int(name, field, wrong):
    tag, what, parts = VALID[name]
    if wrong is None and name == "slice":
        return  # a slice's fields may be None (checked below)
    bad = list(parts)
    bad[field] = wrong

    refused_exactly(one([M[tag], *bad]), f"malformed {what}")


def test_a_slice_takes_none_or_ints():
    assert decode(one([M[tags.SLICE], None, None, None])) == slice(None)
    assert decode(one([M[tags.SLICE], -1, 5, 2])) == slice(-1, 5, 2)
    refused_exactly(one([M[tags.SLICE], 1.0, None, None]), "malformed slice")


@pytest.mark.parametrize("parts", [[1, 2], [1.0, 2], ["1", 2.0], [None, 2.0]], ids=repr)
def test_a_complex_takes_two_floats(parts):
    refused_exactly(one([M[tags.COMPLEX], *parts]), "malformed complex")


@pytest.mark.parametrize("parts", [[1, "E", None], ["a", 2, None], ["a", "E", 3], ["a", "E", b"c"]], ids=repr)
def test_an_error_value_takes_strs(parts):
    refused_exactly(one([M[tags.REMOTE_ERROR], *parts]), "malformed error value")


def test_an_error_value_comes_back_whole():
    got = decode(one([M[tags.REMOTE_ERROR], "alice", "ValueError", "why"]))

    assert (got.src_party, got.error_type, got.cause) == ("alice", "ValueError", "why")


def test_a_fraction_with_denominator_one_is_accepted_and_zero_or_below_refused():
    assert decode(one([M[tags.FRACTION], 3, 1])) == fractions.Fraction(3)
    assert decode(one([M[tags.FRACTION], -3, 4])) == fractions.Fraction(-3, 4)
    refused_exactly(one([M[tags.FRACTION], 3, -1]), "malformed Fraction")


def test_a_times_fold_and_a_zones_name_come_back():
    named = decode(one([M[tags.TIMEZONE], TD, "CET"]))
    assert named.tzname(None) == "CET"
    assert decode(one([M[tags.TIMEZONE], TD, None])).tzname(None) == "UTC+01:00"
    got = decode(one([M[tags.TIME], 1, 2, 3, 4, 1, [M[tags.TIMEZONE], TD, "CET"]]))
    assert got.fold == 1 and got.tzname() == "CET" and got == datetime.time(1, 2, 3, 4, datetime.timezone(
        datetime.timedelta(hours=1)))
    stamp = decode(one([M[tags.DATETIME], 2000, 1, 2, 3, 4, 5, 6, 1, None]))
    assert stamp.fold == 1 and stamp == datetime.datetime(2000, 1, 2, 3, 4, 5, 6)


def test_a_zone_name_is_at_most_64_chars_and_a_zone_offset_a_timedelta():
    assert decode(one([M[tags.TIMEZONE], TD, "z" * 64])).tzname(None) == "z" * 64
    refused_exactly(one([M[tags.TIMEZONE], TD, "z" * 65]), "malformed time zone")
    refused_exactly(one([M[tags.TIMEZONE], 3600, "z"]), "malformed time zone")
    refused_exactly(one([M[tags.TIMEZONE], TD, 5]), "malformed time zone")
    refused_exactly(one([M[tags.TIMEZONE], 3600, None]), "malformed time zone")


def test_a_deque_bound_is_none_or_zero_up_to_two_to_the_62():
    assert decode(one([M[tags.DEQUE], 0, 1, 2])) == collections.deque([], maxlen=0)
    assert decode(one([M[tags.DEQUE], (1 << 62) - 1, 1])).maxlen == (1 << 62) - 1
    assert decode(one([M[tags.DEQUE], None, 1, 2])) == collections.deque([1, 2])
    refused_exactly(one([M[tags.DEQUE], 1 << 62, 1]), "malformed deque")
    refused_exactly(one([M[tags.DEQUE], 1.0, 1]), "malformed deque")
    refused_exactly(one([M[tags.DEQUE]]), "malformed deque")


def test_a_big_int_has_one_to_max_int_bytes():
    assert decode(one([M[tags.BIG_INT], b"\x01" * MAX_INT_BYTES])) == int.from_bytes(b"\x01" * MAX_INT_BYTES, "little")
    refused_exactly(one([M[tags.BIG_INT], b"\x01" * (MAX_INT_BYTES + 1)]), "malformed int")
    refused_exactly(one([M[tags.BIG_INT], b""]), "malformed int")
    refused_exactly(one([M[tags.BIG_INT], 5]), "malformed int")


def test_a_decimal_has_at_most_max_decimal_chars_and_an_exponent_within_a_million():
    assert decode(one([M[tags.DECIMAL], "1" * MAX_DECIMAL_CHARS])) == decimal.Decimal("1" * MAX_DECIMAL_CHARS)
    refused_exactly(one([M[tags.DECIMAL], "1" * (MAX_DECIMAL_CHARS + 1)]), "malformed Decimal")
    for text in ("1e1000000", "1e-1000000", "NaN", "-Infinity"):
        assert str(decode(one([M[tags.DECIMAL], text]))) == str(decimal.Decimal(text))
    for text in ("1e1000001", "1e-1000001"):
        refused_exactly(one([M[tags.DECIMAL], text]), "a Decimal with an exponent beyond 10**6")


def test_at_most_max_colliding_keys_share_one_hash():
    colliding = [[M[tags.BIG_INT], (5 + i * (2**61 - 1)).to_bytes(9, "little", signed=True)]
                 for i in range(MAX_COLLIDING_KEYS + 1)]
    assert len(decode(one([M[tags.SET], *colliding[:MAX_COLLIDING_KEYS]]))) == MAX_COLLIDING_KEYS
    assert len(decode(one([M[tags.SET], *colliding[:MAX_COLLIDING_KEYS], 1]))) == MAX_COLLIDING_KEYS + 1
    refused_exactly(one([M[tags.SET], *colliding]), "malformed value: keys crafted to collide")


def test_a_segment_reference_one_past_the_last_segment_is_refused():
    refused_exactly(one([M[tags.BYTES], 2], b"x"), "malformed value: a bad segment reference", copied=(1, 2))
    refused_exactly(one([M[tags.BYTES], True], b"x"), "malformed value: a bad segment reference", copied=(1,))
    assert decode(one([M[tags.BYTES], 1], b"x"), copied=(1,)) == b"x"


def test_a_map_in_several_records_takes_str_and_bytes_keys_together():
    got = decode(raw((records.OPEN_MAP, b""), (records.VALUES, P(["a", 1, b"b", 2], use_bin_type=True)),
                     (records.CLOSE, b"")))

    assert got == {"a": 1, b"b": 2}


def test_a_record_of_exactly_doc_max_is_accepted():
    body = P(b"x" * (records.DOC_MAX - 5), use_bin_type=True)
    assert len(body) == records.DOC_MAX

    assert decode(raw((records.VALUE, body))) == b"x" * (records.DOC_MAX - 5)


def test_a_truncated_record_after_a_good_one_is_refused_for_what_it_is():
    good = P([1] * 100)
    head_only = bytearray()
    records.add(head_only, records.OPEN_LIST)
    records.add(head_only, records.VALUES, good)
    whole = bytes(head_only)
    # two bytes of a head after complete records
    refused_exactly([memoryview(whole + b"\x02\x00")], "malformed value: a truncated record")
    # a head whose size runs past the end, far into the segment
    short = whole + bytes([records.VALUES]) + (len(good)).to_bytes(4, "little") + good[:-1]
    refused_exactly([memoryview(short)], "malformed value: a record of a bad size")


def test_an_out_of_band_str_keeps_surrogates_and_refuses_a_cut_sequence():
    text = "a\udc80" * 200
    data = text.encode("utf-8", "surrogatepass")
    assert decode(one([M[tags.STR], 1], data), copied=(1,)) == text
    refused_exactly(one([M[tags.STR], 1], "é".encode()[:1]), "malformed str: not UTF-8", copied=(1,))


def test_an_unregistered_type_names_itself_only_in_the_detail():
    error = refused_exactly(one([M[tags.REGISTERED], "no-such", 1]),
                            "the value holds a registered type that this party has not registered")

    assert error.detail == "no-such is not registered here (fed.register_type)"


def test_nesting_through_dict_values_counts_as_nesting():
    deep: object = 1
    for _ in range(150):
        deep = {"k": deep}

    refused_exactly(one(deep), "the value nests more than 100 levels deep")


def test_dates_and_times_out_of_their_range_are_refused_by_their_builder():
    refused_exactly(one([M[tags.DATE], 2000, 13, 1]), "malformed date")
    refused_exactly(one([M[tags.DATE], 2000, 2, 30]), "malformed date")
    refused_exactly(one([M[tags.TIME], 25, 0, 0, 0, 0, None]), "malformed time")
    refused_exactly(one([M[tags.TIME], 1, 0, 0, 0, 2, None]), "malformed time")  # fold is 0 or 1
    refused_exactly(one([M[tags.DATETIME], 2000, 1, 1, 0, 60, 0, 0, 0, None]), "malformed datetime")


def test_a_generic_refusal_names_the_exception_only_in_its_detail():
    error = refused_exactly(one({1: "x"}), "malformed value")  # msgpack refuses an int map key

    assert error.detail == "ValueError"


def test_a_registered_type_is_named_by_a_str():
    refused_exactly(one([M[tags.REGISTERED], ["x"], 1]),
                    "the value holds a registered type that this party has not registered")
