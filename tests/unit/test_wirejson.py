"""Bounded JSON decoding: the value count is checked before anything is built."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.wirejson import count_is_within, encode_json, encode_plain, parse_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _count(value: Any) -> int:
    """Values in ``value``, keys included, an empty array or object counted twice."""
    if isinstance(value, list):
        return 1 + (sum(map(_count, value)) if value else 1)
    if isinstance(value, dict):
        return 1 + (len(value) + sum(map(_count, value.values())) if value else 1)
    return 1


@given(json_values)
@example({"a,b:[{": ['",[{:\\']})  # separators inside strings, and escaped quotes
def test_the_count_is_exact_whatever_the_strings_hold(value: Any) -> None:
    body = json.dumps(value).encode()
    assert count_is_within(body, _count(value))
    assert not count_is_within(body, _count(value) - 1)


@given(json_values)
def test_decoding_matches_the_standard_library(value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    assert parse_json(body, _count(value)) == json.loads(body)


def test_many_tiny_values_are_refused_before_they_are_built() -> None:
    with pytest.raises(BadRequest, match="too many values"):
        parse_json(b"[" + b"[]," * 1_000_000 + b"[]]", 1000)


@pytest.mark.parametrize("body", [b"[" * 100_000, b"NaN", b"1e400", b'"\\ud800"', b"{"])
def test_bad_or_hostile_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json(body, 1 << 20)


# What SQLite gives for a chunk's rows: 64-bit integers and text (lone surrogates cannot come
# out of a UTF-8 database).
_sql_text = st.text(st.characters(exclude_categories=["Cs"]))
_sql_rows = st.lists(
    st.lists(
        st.integers(-(1 << 63), (1 << 63) - 1) | _sql_text | st.booleans() | st.none(),
        max_size=6,
    ),
    max_size=4,
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@given(st.dictionaries(st.text(max_size=5), _sql_rows, max_size=3))
@example({"notes": [[1, 'a\x1fb\x00\x7f\u2028"\\é😀\n\t']]})
def test_rows_encode_to_the_same_bytes_as_json(value: dict[str, Any]) -> None:
    assert encode_plain(value) == _dumps(value)


# Any JSON value Python can hold: unbounded integers, every float (NaN and infinities too),
# any text (lone surrogates included, which neither encoder can write as UTF-8).
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(any_json)
@example(1e16)  # 1e16 against 1e+16
@example(1.5e-07)  # 1.5e-7 against 1.5e-07
@example(1e-05)  # 0.00001 against 1e-05
@example([0.0001, 0.1, -0.0, 5e-324, 1.7976931348623157e308])
@example(float("nan"))  # null against NaN
@example(float("-inf"))
@example([1 << 64, -(1 << 63) - 1, 1 << 200])
@example({"0.00001": "1e16", "\u2028": "a\x1f\x7f😀"})
@example({"1": [True, False, None], "": {}})
def test_encoding_gives_the_bytes_of_json_dumps(value: Any) -> None:
    try:
        expected = _dumps(value)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            encode_json(value)
    else:
        assert encode_json(value) == expected
