"""Per-user folders and the rule for user names that are safe as folder names."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ankisyncd.errors import UserError

MAX_USERNAME_CHARS = 128
MAX_USERNAME_BYTES = 255
COLLECTION_FILE = "collection.anki2"
# Characters that are unsafe in a folder name on some common filesystem, or that the
# official server's SYNC_USERn=name:password format cannot carry (":").
_FORBIDDEN_CHARS = frozenset('/\\:<>"|?*')
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)


def check_username(name: str) -> str:
    """Return ``name`` if it is safe as a folder name under the data root, else raise UserError."""
    problem = _username_problem(name)
    if problem:
        raise UserError(f"user name {name!r} is not allowed: {problem}")
    return name


def _username_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if (
        len(name) > MAX_USERNAME_CHARS
        or len(name.encode("utf-8", "surrogatepass")) > MAX_USERNAME_BYTES
    ):
        return f"it is longer than {MAX_USERNAME_CHARS} characters"
    if name.startswith("."):
        return "it starts with '.' (names starting with '.' are reserved)"
    if name != name.strip() or name.endswith("."):
        return "it starts or ends with white space, or ends with '.'"
    for ch in name:
        if ch in _FORBIDDEN_CHARS:
            return f"it contains {ch!r}"
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Zl", "Zp") or ch == "\x00":
            return "it contains a control character"
    if name.split(".")[0].upper() in _WINDOWS_DEVICES:
        return "it is a reserved device name on Windows"
    return None


def fold_username(name: str) -> str:
    """The form in which two names count as the same user: case and Unicode normalisation
    folded (NFKC casefold), as case-insensitive or normalising file systems (macOS, Windows)
    would give both one folder."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def check_new_username(name: str, existing: Iterable[str]) -> None:
    """Raise UserError if ``name``, or a name that folds to the same form, already exists."""
    folded = fold_username(name)
    clash = next((other for other in existing if fold_username(other) == folded), None)
    if clash == name:
        raise UserError(f"user {name!r} already exists")
    if clash is not None:
        raise UserError(
            f"user {name!r} would share a folder with user {clash!r} on case-insensitive"
            " file systems (names may not differ only in case or Unicode form)"
        )


def user_folder(data_root: Path, name: str) -> Path:
    """The folder of user ``name``: ``<data root>/<name>``, as the official server lays it out."""
    folder = data_root / check_username(name)
    # Defence in depth: the name rule above already keeps the folder inside the data root.
    if os.path.dirname(os.path.normpath(folder)) != os.path.normpath(data_root):
        raise UserError(f"user name {name!r} is not allowed: it leaves the data root")
    return folder
