"""applyChunk rows: the one-pass typed decoder agrees with the general checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.normal import Chunk, parse_apply_chunk
from ankisyncd.protocol.rows import check_chunk, decode_chunk
from ankisyncd.protocol.wirejson import expect_object, parse_json

_EDGES = [0, 1, -1, 3, 4, 5, 6, -3, -4, 255, 256, 65535, 65536]
_EDGES += [(1 << n) + d for n in (31, 32, 63) for d in (-1, 0)]
_EDGES += [-(1 << n) + d for n in (31, 63) for d in (0, -1)]

values: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(_EDGES),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from([1.0, 1.5, -0.5, 2.0**40]),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.sampled_from(["12", " 7 "]),
)
# Rows: mostly valid, with a few columns replaced and a length now and then off by one.
_REVLOG = [1, 2, 3, 3, 10, 5, 2500, 6000, 1]
_CARD = [1, 2, 1, 0, 100, 3, 2, 2, 500, 10, 2500, 4, 1, 0, 0, 0, 1, "{}"]
_NOTE = [1, "guid", 3, 100, 4, "tag", "a\x1fb", "", "", 0, ""]


def _rows(template: list[Any]) -> st.SearchStrategy[list[Any]]:
    def mutate(changes: list[tuple[int, Any]], cut: int) -> list[Any]:
        row = list(template)
        for index, value in changes:
            row[index] = value
        return row[: len(row) + cut] if cut < 0 else row + [0] * cut

    change = st.tuples(st.integers(0, len(template) - 1), st.sampled_from(_EDGES) | values)
    return st.builds(
        mutate, st.lists(change, max_size=2), st.sampled_from([0, 0, 0, 0, 0, 0, -1, 1])
    )


chunks = st.fixed_dictionaries(
    {},
    optional={
        "done": st.one_of(st.booleans(), st.none(), st.just(1)),
        "revlog": st.lists(_rows(_REVLOG), max_size=3) | st.none(),
        "cards": st.lists(_rows(_CARD), max_size=3),
        "notes": st.lists(_rows(_NOTE), max_size=3),
        "other": values,
    },
)


def _general(body: bytes) -> Chunk | None:
    """The chunk as the general checks read it (as before the typed decoder), or None if they
    refuse it."""
    try:
        return Chunk(*check_chunk(expect_object(parse_json(body, 1 << 20), "body").get("chunk")))
    except BadRequest:
        return None


@settings(max_examples=3000)
@given(chunks)
@example({"done": True, "revlog": [_REVLOG[:8]]})
@example({"done": True, "cards": [[*_CARD[:9], -1, *_CARD[10:]]]})
def test_typed_decoding_accepts_and_refuses_what_the_general_checks_do(
    chunk: dict[str, Any],
) -> None:
    body = json.dumps({"chunk": chunk}).encode()
    expected = _general(body)
    fast = decode_chunk(body)
    if fast is not None:  # the fast path takes only what the checks accept, unchanged
        assert Chunk(*fast) == expected
    if expected is None:
        with pytest.raises(BadRequest):
            parse_apply_chunk(body)
    else:
        assert parse_apply_chunk(body) == expected


def test_usual_rows_take_the_fast_path() -> None:
    body = json.dumps(
        {"chunk": {"done": True, "revlog": [_REVLOG], "cards": [_CARD], "notes": [_NOTE]}}
    ).encode()
    rows = decode_chunk(body)
    assert rows == (True, [tuple(_REVLOG)], [tuple(_CARD)], [tuple(_NOTE[:7])])


def test_rows_needing_conversion_take_the_general_path() -> None:
    card = [*_CARD[:9], 1.9, *_CARD[10:]]  # ivl: the official parser truncates floats
    body = json.dumps({"chunk": {"cards": [card], "revlog": [_REVLOG[:8]]}}).encode()
    assert decode_chunk(body) is None
    chunk = parse_apply_chunk(body)
    assert chunk.cards[0][9] == 1
    assert chunk.revlog == [(*_REVLOG[:8], 0)]


def test_missing_chunk_and_duplicate_keys_follow_the_general_rules() -> None:
    with pytest.raises(BadRequest):
        parse_apply_chunk(b'{"other": 1}')
    chunk = parse_apply_chunk(b'{"chunk": {"done": false, "done": true, "cards": []}}')
    assert chunk == Chunk(True)


@pytest.mark.parametrize(
    ("table", "template"), [("revlog", _REVLOG), ("cards", _CARD), ("notes", _NOTE)]
)
def test_each_column_at_each_edge_agrees(table: str, template: list[Any]) -> None:
    odd = [1.0, 1.5, -0.5, 2.0**40, True, None, "", "12", [], {}]
    for index in range(len(template)):
        for value in [*_EDGES, *odd]:
            row = list(template)
            row[index] = value
            body = json.dumps({"chunk": {table: [row]}}).encode()
            fast = decode_chunk(body)
            if fast is not None:
                assert Chunk(*fast) == _general(body), (table, index, value)
