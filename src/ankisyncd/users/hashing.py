"""Password hashes: argon2id for our users; PBKDF2 PHC strings for the official server's users."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Unknown users are checked against this, so a failed login costs the same either way.
_DUMMY_HASH = _hasher.hash("ankisyncd: no such user")
_PBKDF2 = re.compile(
    r"^\$pbkdf2-(?P<digest>sha256|sha512)\$i=(?P<rounds>\d+),l=(?P<length>\d+)"
    r"\$(?P<salt>[A-Za-z0-9+/.]+)\$(?P<hash>[A-Za-z0-9+/.]+)$"
)


def hash_password(password: str) -> str:
    """Hash a password with argon2id; returns a PHC string."""
    return _hasher.hash(password)


def verify_password(phc: str, password: str) -> bool:
    """Check ``password`` against an argon2 or PBKDF2 PHC string, in constant time."""
    if phc.startswith("$pbkdf2-"):
        return _verify_pbkdf2(phc, password)
    try:
        return _hasher.verify(phc, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def burn_verification(password: str) -> None:
    """Spend the time of one real verification; used for unknown user names."""
    verify_password(_DUMMY_HASH, password)


def check_phc(phc: str) -> None:
    """Raise ValueError unless ``phc`` is a hash this module can verify."""
    if phc.startswith("$argon2"):
        try:
            _hasher.check_needs_rehash(phc)
        except (InvalidHashError, ValueError) as exc:
            raise ValueError("not a valid argon2 PHC string") from exc
        return
    match = _PBKDF2.match(phc)
    if not match:
        raise ValueError("not an argon2 or pbkdf2-sha256/sha512 PHC string")
    if not 1 <= int(match["rounds"]) <= 10_000_000 or not 16 <= int(match["length"]) <= 64:
        raise ValueError("pbkdf2 rounds or length out of range")
    _b64(match["salt"])
    _b64(match["hash"])


def _b64(text: str) -> bytes:
    # PHC "B64": standard alphabet without padding (some writers use "." for "+").
    text = text.replace(".", "+")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("bad base64 in PHC string") from exc


def _verify_pbkdf2(phc: str, password: str) -> bool:
    match = _PBKDF2.match(phc)
    try:
        check_phc(phc)
        assert match is not None
        salt, expected = _b64(match["salt"]), _b64(match["hash"])
    except ValueError:
        return False
    derived = hashlib.pbkdf2_hmac(
        match["digest"], password.encode(), salt, int(match["rounds"]), int(match["length"])
    )
    return hmac.compare_digest(derived, expected)
