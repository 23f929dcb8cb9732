"""User names must be safe folder names under the data root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ankisyncd.errors import UserError
from ankisyncd.storage.paths import check_new_username, check_username, user_folder

ROOT = Path("/srv/data")


@given(st.text(max_size=40))
@example("..")
@example("a/../..")
@example("\x00")
@example("a\\..\\b")
@example("nul.txt")
def test_no_accepted_name_escapes_the_data_root(name: str) -> None:
    try:
        folder = user_folder(ROOT, name)
    except UserError:
        return
    assert os.path.dirname(os.path.normpath(folder)) == str(ROOT)
    assert folder.name == name and name not in (".", "..")


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        ".x",
        "a/b",
        "a\\b",
        "a\x00b",
        "a\nb",
        "a:b",
        " a",
        "a ",
        "a.",
        "COM1",
        "lpt9.txt",
        "x" * 129,
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UserError, match="is not allowed"):
        check_username(name)


@pytest.mark.parametrize("name", ["alice", "alice@example.com", "Ünïcode 名前", "a.b", "a-b_c"])
def test_ordinary_names_are_accepted(name: str) -> None:
    assert check_username(name) == name


@pytest.mark.parametrize(
    ("new", "existing"),
    [
        ("Alice", "alice"),
        ("ALICE", "alice"),
        ("e\u0301mile", "\u00e9mile"),
        ("ﬁona", "fiona"),
        ("STRASSE", "straße"),
    ],
)
def test_a_name_that_folds_to_an_existing_one_is_refused(new: str, existing: str) -> None:
    with pytest.raises(UserError, match="share a folder"):
        check_new_username(new, ["bob", existing])
    check_new_username(new, ["bob"])
