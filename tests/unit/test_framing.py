"""v11 framing: the anki-sync header and capped zstd decoding."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
import zstandard
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive

from ankisyncd.errors import BadRequest
from ankisyncd.http.framing import (
    BodyTooLarge,
    SyncHeader,
    body_chunks,
    parse_sync_header,
    raw_sync_header,
    v11_request,
)
from ankisyncd.http.zstd import MAX_WINDOW_BYTES, ZstdBody, compress
from tests.support.wire import zstd


def _pieces_of(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut after each of ``sizes`` bytes, and the rest."""
    pieces, pos = [], 0
    for size in sizes:
        pieces.append(data[pos : pos + size])
        pos += size
    return [*pieces, data[pos:]]


def _receive(pieces: list[bytes]) -> Receive:
    """ASGI ``receive`` giving a body in ``pieces``, one message each."""
    last = len(pieces) - 1
    messages = iter(
        {"type": "http.request", "body": piece, "more_body": i < last}
        for i, piece in enumerate(pieces)
    )

    async def receive() -> Message:
        return next(messages)

    return receive


HEADER = SyncHeader(11, "", "", "")  # type: ignore[arg-type]


def _read(data: bytes, sizes: list[int], cap: int) -> bytes:
    """The body read whole; with no ``sizes``, received in one message (the quick path)."""
    return asyncio.run(v11_request(HEADER, _receive(_pieces_of(data, sizes))).read(cap))


def _outcome(data: bytes, sizes: list[int], cap: int) -> bytes | str:
    try:
        return _read(data, sizes, cap)
    except BadRequest as exc:
        return f"{type(exc).__name__}: {exc}"


_bodies = st.one_of(st.binary(max_size=3000).map(zstd), st.binary(max_size=300))


@given(_bodies, st.integers(0, 4000), st.integers(0, 3000))
@example(zstd(b"{}"), 1, 0)
@example(b"", 0, 0)
def test_a_body_in_one_message_reads_as_in_pieces(data: bytes, cap: int, cut: int) -> None:
    """The whole-message path gives what the pieces' path gives: the body or the same error."""
    assert _outcome(data, [], cap) == _outcome(data, [min(cut, len(data))], cap)


@given(st.binary(max_size=50_000), st.lists(st.integers(1, 5000), max_size=20))
def test_any_body_survives_compression_in_any_chunking(body: bytes, sizes: list[int]) -> None:
    assert _read(zstd(body), sizes, len(body) + 1) == body


@given(st.binary(min_size=1, max_size=20_000), st.integers(0, 19_999))
def test_decoding_stops_at_the_cap(body: bytes, cap: int) -> None:
    if cap >= len(body):
        assert _read(zstd(body), [], cap) == body
        return
    with pytest.raises(BadRequest):
        _read(zstd(body), [], cap)

    async def collect() -> bytes:
        incoming = v11_request(HEADER, _receive(_pieces_of(zstd(body), [7])))
        return b"".join([part async for part in incoming.open_body(cap)])

    assert asyncio.run(collect()) == body[:cap]


def test_a_bomb_never_produces_more_than_the_cap() -> None:
    bomb = zstd(bytes(256 << 20))
    decoder = ZstdBody(1 << 20)
    produced = sum(map(len, decoder.feed(bomb)))
    assert decoder.capped and produced == 1 << 20


@given(st.binary(max_size=2000))
@example(b"\x28\xb5\x2f\xfd\x00\x00")  # a zstd magic number and then nonsense
def test_arbitrary_bytes_give_bad_request_or_nothing(data: bytes) -> None:
    with contextlib.suppress(BadRequest):
        _read(data, [3], 1 << 20)


def test_window_larger_than_clients_use_is_refused() -> None:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=26)
    stream = zstandard.ZstdCompressor(compression_params=params).compressobj()
    big_window = stream.compress(b"x" * 1000) + stream.flush()
    assert MAX_WINDOW_BYTES < 1 << 26
    with pytest.raises(BadRequest):
        _read(big_window, [], 1 << 20)


def _skippable(size: int) -> bytes:
    return (0x184D2A50).to_bytes(4, "little") + size.to_bytes(4, "little") + bytes(size)


@pytest.mark.parametrize("cap", [64 << 10, 32 << 20])
def test_padding_of_skippable_frames_is_bounded(cap: int) -> None:
    """Skippable frames decode to nothing: the compressed size has its own bound."""
    padding = _skippable(1 << 20) * (cap // (1 << 20) + 2)
    with pytest.raises(BodyTooLarge):
        _read(padding + zstd(b"{}"), [], cap)


def test_a_capped_body_is_drained_only_so_far() -> None:
    """After the cap, the rest is read so the client gets an answer, but not without end."""

    sent = [zstd(bytes(2 << 20))]

    async def endless() -> Message:
        body = sent.pop() if sent else bytes(64 << 10)
        return {"type": "http.request", "body": body, "more_body": True}

    async def drain() -> int:
        total = 0
        async for part in v11_request(HEADER, endless).open_body(1 << 20):
            total += len(part)
        return total

    with pytest.raises(BodyTooLarge):
        asyncio.run(drain())


@pytest.mark.parametrize("size", [5, 1024, 1025, 100_000])
def test_response_frames_decode_with_a_one_shot_decoder(size: int) -> None:
    """Small answers use a faster level than large ones; both are ordinary frames."""
    body = (b'{"usn":12,"mod":1764460000000}' * (size // 30 + 1))[:size]
    assert zstandard.ZstdDecompressor().decompress(compress(body)) == body


def test_header_with_all_four_keys_parses() -> None:
    header = parse_sync_header('{"v":11,"k":"abc","c":"26.09.3,29bb700b,linux","s":"eOhaGJ"}')
    assert (header.version, header.host_key, header.session_key) == (11, "abc", "eOhaGJ")
    assert header.client_version == "26.09.3,29bb700b,linux"


@given(st.text(max_size=200))
@example('{"v":true,"k":"","c":"","s":""}')
@example('{"v":11.0,"k":"","c":"","s":""}')
def test_arbitrary_header_text_parses_or_is_bad_request(raw: str) -> None:
    try:
        header = parse_sync_header(raw)
    except BadRequest:
        return
    assert 8 <= header.version <= 11


@given(st.integers(), st.text(max_size=5), st.text(max_size=5), st.text(max_size=5))
def test_header_versions_outside_8_to_11_are_refused(v: int, k: str, c: str, s: str) -> None:
    raw = json.dumps({"v": v, "k": k, "c": c, "s": s})
    if 8 <= v <= 11:
        assert parse_sync_header(raw).version == v
    else:
        with pytest.raises(BadRequest):
            parse_sync_header(raw)


@pytest.mark.parametrize(
    "left_in", [b"half", b"garbage", b"capped"], ids=["half-frame", "garbage", "capped"]
)
def test_a_reused_decoder_starts_afresh_and_keeps_its_window_limit(left_in: bytes) -> None:
    """Decoders are reused: whatever the last body left in one, the next body decodes alone,
    and the window limit still holds."""
    body = json.dumps({"v": 11, "cv": "x" * 300}).encode()
    first = ZstdBody(100 if left_in == b"capped" else 1 << 20)
    decoder = first._decoder
    with contextlib.suppress(BadRequest):
        if left_in == b"half":
            first.feed(zstd(body)[:20])
        elif left_in == b"garbage":
            first.feed(b"\x28\xb5\x2f\xfd" + bytes(range(200)))
        else:
            first.feed(zstd(body))
            assert first.capped
    first.release()
    second = ZstdBody(1 << 20)
    assert second._decoder is decoder  # the same decoder, reused
    assert b"".join(second.feed(zstd(body))) == body
    second.release()
    assert _read(zstd(body), [5], 1 << 20) == body
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=26)
    stream = zstandard.ZstdCompressor(compression_params=params).compressobj()
    with pytest.raises(BadRequest):
        _read(stream.compress(b"x" * 1000) + stream.flush(), [], 1 << 20)


def _header_before_msgspec(raw: str) -> tuple[int, str, str, str] | None:
    """The header check as it was written with ``json.loads`` (None: refused)."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    version, key, client, session = obj.get("v"), obj.get("k"), obj.get("c"), obj.get("s")
    if isinstance(version, bool) or not isinstance(version, int) or not 8 <= version <= 11:
        return None
    if not (isinstance(key, str) and isinstance(client, str) and isinstance(session, str)):
        return None
    return version, key, client, session


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)
) | st.sampled_from([8, 9, 10, 11, 11.0])
_headers = st.dictionaries(
    st.sampled_from(["v", "k", "c", "s", "x"]), _scalars | st.lists(_scalars, max_size=2)
).map(json.dumps)


@given(_headers | st.text(max_size=60))
@example('{"v":11,"k":"a","k":"b","c":"","s":""}')  # a repeated key: the last one counts
@example('{"v":11,"k":"","c":"","s":"","extra":[1,{"a":null}]}')
@example('{"v":1e1,"k":"","c":"","s":""}')
@example('[11,"","",""]')
def test_the_header_is_accepted_and_refused_as_before(raw: str) -> None:
    """The msgspec decoder accepts exactly what the json.loads checks did, with the same
    values. One difference: JSON escapes of lone surrogates (``"\\ud800"``), which json.loads
    accepted and the client can never send, are refused."""
    before = _header_before_msgspec(raw)
    if before is not None and any(
        0xD800 <= ord(ch) <= 0xDFFF for field in before[1:] for ch in field
    ):
        return
    try:
        header = parse_sync_header(raw)
    except BadRequest:
        assert before is None
        return
    after = (header.version, header.host_key, header.client_version, header.session_key)
    assert after == before


_names = st.sampled_from([b"anki-sync", b"anki-syn", b"anki-sync2", b"host", b"x-anki-sync"])


@given(st.lists(st.tuples(_names, st.binary(max_size=20)), max_size=6))
@example([(b"anki-sync", b"first"), (b"anki-sync", b"second")])
@example([(b"anki-sync", "\u00e9".encode("latin-1"))])
def test_the_raw_header_is_found_as_starlette_finds_it(headers: list[tuple[bytes, bytes]]) -> None:
    expected = Headers(scope={"type": "http", "headers": headers}).get("anki-sync")
    assert raw_sync_header(headers) == expected


async def _pieces(messages: list[dict[str, object]], own: bool) -> list[bytes]:
    queue = iter(messages)

    async def receive() -> dict[str, object]:
        return next(queue)

    chunks = body_chunks(receive) if own else Request({"type": "http"}, receive).stream()
    return [piece async for piece in chunks if piece or own]


@pytest.mark.parametrize(
    "bodies",
    [[b"abc"], [b"", b"x", b"", b"yz"], [b""], [b"a" * 70_000, b"b"]],
)
def test_body_chunks_are_the_request_streams_pieces(bodies: list[bytes]) -> None:
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": body, "more_body": i < len(bodies) - 1}
        for i, body in enumerate(bodies)
    ]
    expected = asyncio.run(_pieces(list(messages), own=False))
    assert asyncio.run(_pieces(list(messages), own=True)) == expected == [b for b in bodies if b]


def test_a_disconnect_before_the_body_ends_is_a_client_disconnect() -> None:
    messages = [{"type": "http.request", "body": b"a", "more_body": True}]
    messages.append({"type": "http.disconnect"})
    with pytest.raises(ClientDisconnect):
        asyncio.run(_pieces(messages, own=True))
