"""Password hashes and host keys."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ankisyncd.users.hashing import check_phc, hash_password, verify_password
from ankisyncd.users.hostkey import official_host_key


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def test_argon2id_round_trip() -> None:
    phc = hash_password("pw")
    assert phc.startswith("$argon2id$")
    assert verify_password(phc, "pw") and not verify_password(phc, "pW")
    check_phc(phc)


@pytest.mark.parametrize("digest", ["sha256", "sha512"])
def test_pbkdf2_phc_from_the_official_format(digest: str) -> None:
    salt = b"\x00\x01salt-bytes\xff"
    dk = hashlib.pbkdf2_hmac(digest, b"pw", salt, 1000, 32)
    phc = f"$pbkdf2-{digest}$i=1000,l=32${_b64(salt)}${_b64(dk)}"
    check_phc(phc)
    assert verify_password(phc, "pw") and not verify_password(phc, "px")


@pytest.mark.parametrize(
    "phc",
    [
        "",
        "plain",
        "$pbkdf2-sha1$i=1,l=32$AA$AA",
        "$pbkdf2-sha256$i=0,l=32$AAAA$AAAA",
        "$pbkdf2-sha256$i=10,l=32$!!$AAAA",
        "$argon2id$garbage",
    ],
)
def test_unusable_hashes_are_refused(phc: str) -> None:
    with pytest.raises(ValueError):
        check_phc(phc)
    assert not verify_password(phc, "anything")


def test_official_host_key_is_sha1_of_the_user_line() -> None:
    assert official_host_key("alice:pw") == "579e7fa764f43a98d0fa5a30dcd5401f868bbe6d"
