"""Request messages: what parses and what is a 400."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.messages import (
    HostKeyRequest,
    MetaRequest,
    MetaResponse,
    check_empty_input,
)


def test_meta_request_round_trip() -> None:
    req = MetaRequest(11, "anki,26.09.3 (29bb700b),linux")
    assert MetaRequest.from_wire(req.to_wire()) == req


@given(st.integers(-1000, 1000))
def test_meta_version_is_an_unsigned_byte(v: int) -> None:
    body = json.dumps({"v": v, "cv": "x"}).encode()
    if 0 <= v <= 255:
        assert MetaRequest.from_wire(body).version == v
    else:
        with pytest.raises(BadRequest):
            MetaRequest.from_wire(body)


def test_meta_response_round_trip() -> None:
    resp = MetaResponse(1, 2, 3, 4, "", True, 0, False, 5)
    assert MetaResponse.from_wire(resp.to_wire()) == resp


@given(st.dictionaries(st.text(max_size=5), st.none() | st.integers(), max_size=3))
def test_empty_input_accepts_only_pad(obj: dict[str, object]) -> None:
    body = json.dumps(obj).encode()
    if set(obj) <= {"_pad"}:
        check_empty_input(body)
    else:
        with pytest.raises(BadRequest):
            check_empty_input(body)


@given(st.binary(max_size=100))
def test_arbitrary_login_bodies_parse_or_are_bad_request(body: bytes) -> None:
    with contextlib.suppress(BadRequest):
        HostKeyRequest.from_wire(body)


def test_login_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(HostKeyRequest("a", "hunter2"))
