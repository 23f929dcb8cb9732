"""Request and response messages; raw JSON never gets past this module.

Wire names (``u``, ``p``, ``cv``, ``hostNum``, ``media_usn`` …) appear only here. Messages
built for every request are named tuples: a frozen dataclass sets each field through
``object.__setattr__``, ~1k instructions a field (bench/request_cpu.py, item 31).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.limits import SMALL
from ankisyncd.protocol.wirejson import (
    encode_json,
    encode_plain,
    expect_int,
    expect_object,
    expect_str,
    parse_json,
)

# Re-exported: responses are built from the messages' modules.
__all__ = ["encode_json", "encode_plain"]

# The official server refuses any key but this one in an "empty input" body.
_EMPTY_INPUT_KEYS = frozenset({"_pad"})


def _small_object(body: bytes, what: str) -> dict[str, Any]:
    return expect_object(parse_json(body, SMALL.values), what)


def check_empty_input(body: bytes) -> None:
    """Accept ``{}`` and ``{"_pad":null}``, the bodies of chunk, finish, abort and download."""
    obj = _small_object(body, "body")
    if not set(obj) <= _EMPTY_INPUT_KEYS:
        raise BadRequest("invalid json: unexpected key in empty input")


class HostKeyRequest(NamedTuple):
    username: str
    password: str

    def __repr__(self) -> str:
        return f"HostKeyRequest(username={self.username!r}, password='***')"

    @classmethod
    def from_wire(cls, body: bytes) -> HostKeyRequest:
        obj = _small_object(body, "login")
        return cls(expect_str(obj.get("u"), "u"), expect_str(obj.get("p"), "p"))

    def to_wire(self) -> bytes:
        return encode_json({"u": self.username, "p": self.password})


class HostKeyResponse(NamedTuple):
    key: str

    def to_wire(self) -> bytes:
        return encode_json({"key": self.key})


class MetaRequest(NamedTuple):
    version: int
    client_version: str

    @classmethod
    def from_wire(cls, body: bytes) -> MetaRequest:
        obj = _small_object(body, "meta")
        # The official server reads ``v`` as an unsigned byte: 0..255 parses, the rest is a 400.
        return cls(expect_int(obj.get("v"), (0, 255), "v"), expect_str(obj.get("cv"), "cv"))

    def to_wire(self) -> bytes:
        return encode_json({"v": self.version, "cv": self.client_version})


class MetaResponse(NamedTuple):
    modified: int  # ms
    schema_modified: int  # ms
    usn: int
    server_time: int  # s
    message: str
    should_continue: bool
    host_number: int
    empty: bool
    media_usn: int

    def to_wire(self) -> bytes:
        return encode_plain(
            {
                "mod": self.modified,
                "scm": self.schema_modified,
                "usn": self.usn,
                "ts": self.server_time,
                "msg": self.message,
                "cont": self.should_continue,
                "hostNum": self.host_number,
                "empty": self.empty,
                "media_usn": self.media_usn,
            }
        )

    @classmethod
    def from_wire(cls, body: bytes) -> MetaResponse:
        obj = _small_object(body, "meta")
        return cls(
            obj["mod"],
            obj["scm"],
            obj["usn"],
            obj["ts"],
            obj["msg"],
            obj["cont"],
            obj["hostNum"],
            obj.get("empty", False),
            obj["media_usn"],
        )


# Upload answers are text that old clients compare with "OK" exactly.
UPLOAD_OK = "OK"
UPLOAD_TOO_LARGE = "collection exceeds size limit"
UPLOAD_CORRUPT = "Your upload was corrupt. Please use Check Database, or restore from backup."


def encode_null() -> bytes:
    return b"null"
