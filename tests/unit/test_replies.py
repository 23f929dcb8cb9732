"""Answers built by http/replies.py carry exactly the headers Starlette's Response gives."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from ankisyncd.http.framing import ORIGINAL_SIZE_HEADER
from ankisyncd.http.replies import reply_now
from ankisyncd.http.zstd import compress

BODY = b'{"key":"k","usn":0}'


@pytest.mark.parametrize("body", [BODY, b"", b"x" * 70_000])
def test_v11_answer_is_compressed_with_its_original_size(body: bytes) -> None:
    expected = Response(compress(body), headers={ORIGINAL_SIZE_HEADER: str(len(body))})
    answer = reply_now(body, 11)
    assert (answer.status_code, answer.body, answer.background) == (200, expected.body, None)
    assert answer.raw_headers == expected.raw_headers


@pytest.mark.parametrize("version", [1, 10])
@pytest.mark.parametrize("body", [BODY, b""])
def test_legacy_answer_is_plain_bytes(body: bytes, version: int) -> None:
    expected = Response(body, media_type="application/octet-stream")
    answer = reply_now(body, version)
    assert (answer.status_code, answer.body, answer.background) == (200, body, None)
    assert answer.raw_headers == expected.raw_headers
