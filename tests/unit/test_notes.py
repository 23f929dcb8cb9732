"""Sort field and checksum, as the official client computes them."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ankisyncd.sync.notes import (
    clean_fields,
    decode_entities,
    sort_field_and_checksum,
    strip_html_keeping_media_names,
)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("&amp; &bogus; <b>x</b>", "&amp; &bogus; x"),  # one bad entity: nothing decoded
        ("&nbsp;x &amp; y", " x & y"),
        ("a\u00a0b", "a\u00a0b"),  # no "&": a literal no-break space stays
        ('<img src="cat.jpg"> and <audio src=dog.mp3>', " cat.jpg  and  dog.mp3 "),
        ("x<!-- hidden --><style>p{}</style><script>1</script>y", "xy"),
        ("fish & chips", "fish & chips"),
    ],
)
def test_stripping(html: str, text: str) -> None:
    assert strip_html_keeping_media_names(html) == text


def test_checksum_of_the_verified_example() -> None:
    sort, csum = sort_field_and_checksum(["<b>hello</b> &amp; world", "back"], 0)
    assert (sort, csum) == ("hello & world", 3749579339)


def test_sort_field_follows_the_notetype_and_tolerates_a_bad_index() -> None:
    assert sort_field_and_checksum(["a", "<i>b</i>"], 1)[0] == "b"
    assert sort_field_and_checksum(["a"], 5)[0] == ""


def test_control_characters_are_removed_but_tab_and_newline_kept() -> None:
    assert clean_fields("a\x00b\tc\x1fd\ne\x07") == "ab\tc\x1fd\ne"


def test_numeric_entities() -> None:
    assert decode_entities("&#65;&#x42;") == "AB"
    assert decode_entities("&#xZZ;") == "&#xZZ;"


@given(st.text(alphabet=st.sampled_from("ab <>&;#x1\x1f\x00\t\n\x07img src=\"'"), max_size=40))
def test_shortcuts_give_the_same_result_as_the_full_rules(text: str) -> None:
    from ankisyncd.sync import notes

    full = notes._HTML.sub(
        "", notes._MEDIA_TAG.sub(lambda m: f" {m.group(1) or m.group(2) or m.group(3)} ", text)
    )
    assert strip_html_keeping_media_names(text) == decode_entities(full)
    fields = text.split("\x1f")
    assert clean_fields(text) == "\x1f".join(notes._FIELD_CONTROL.sub("", f) for f in fields)


# The tag rule unfactored: one alternative per kind of tag, each starting with its own "<".
_HTML_AS_WRITTEN = re.compile(
    r"(<!--.*?-->)|(<style.*?>.*?</style>)|(<script.*?>.*?</script>)|(<.*?>)",
    re.IGNORECASE | re.DOTALL,
)


_PIECES = [
    "<",
    ">",
    "!--",
    "-->",
    "style",
    "/style",
    "script",
    "SCRIPT",
    "/script",
    "b",
    " ",
    "x",
    "\n",
    "<!--",
    "</",
    "STYLE",
]


@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
@example("a<style>x</style>b<script>y</script>c<!--z-->d<i>e</i>")
@example("<STYLE type=x>p>q</Style><!-- <b> -->")
def test_the_factored_tag_rule_matches_as_written(text: str) -> None:
    from ankisyncd.sync import notes

    assert notes._HTML.sub("", text) == _HTML_AS_WRITTEN.sub("", text)
