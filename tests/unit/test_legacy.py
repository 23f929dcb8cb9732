"""Legacy JSON -> schema 18 -> legacy JSON is lossless, unknown keys included."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ankisyncd.storage.legacy import schemas
from ankisyncd.storage.legacy.deck import deck_from_legacy, deck_to_legacy
from ankisyncd.storage.legacy.deckconfig import deck_config_from_legacy, deck_config_to_legacy
from ankisyncd.storage.legacy.notetype import notetype_from_legacy, notetype_to_legacy
from ankisyncd.storage.legacy.proto import decode, encode
from ankisyncd.storage.legacy.values import LegacyFormatError, f32, short_f32

i64 = st.integers(-(1 << 63), (1 << 63) - 1)
ids = st.integers(1, (1 << 53))
u32 = st.integers(0, (1 << 32) - 1)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
text = st.text(max_size=12)
f32s = st.floats(width=32, allow_nan=False, allow_infinity=False).map(short_f32)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
extra_keys = st.dictionaries(st.text("xyzXYZ_", min_size=3, max_size=8), json_values, max_size=3)


def roundtrip_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def notetype_rows_to_legacy(rows: Any) -> dict[str, Any]:
    return notetype_to_legacy(
        (rows.id, rows.name, rows.mtime, rows.usn, rows.config), rows.fields, rows.templates
    )


field = st.fixed_dictionaries(
    {
        "name": text,
        "ord": st.none(),
        "sticky": st.booleans(),
        "rtl": st.booleans(),
        "font": text,
        "size": st.integers(0, 65535),
        "description": text,
        "plainText": st.booleans(),
        "collapsed": st.booleans(),
        "excludeFromSearch": st.booleans(),
        "id": st.none() | i64,
        "tag": st.none() | u32,
        "preventDeletion": st.booleans(),
    }
)
template = st.fixed_dictionaries(
    {
        "name": text,
        "ord": st.none(),
        "qfmt": text,
        "afmt": text,
        "bqfmt": text,
        "bafmt": text,
        "did": st.none() | ids,
        "bfont": text,
        "bsize": st.integers(0, 255),
        "id": st.none() | i64,
    }
)
notetypes = st.builds(
    lambda base, flds, tmpls, extra: {**extra, **base, "flds": flds, "tmpls": tmpls},
    st.fixed_dictionaries(
        {
            "id": ids,
            "name": text,
            "type": st.integers(0, 1),
            "mod": ids,
            "usn": i32,
            "sortf": st.integers(0, 65535),
            "did": st.none() | ids,
            "css": text,
            "latexPre": text,
            "latexPost": text,
            "latexsvg": st.booleans(),
            "req": st.lists(
                st.tuples(
                    u32, st.sampled_from(["none", "any", "all"]), st.lists(u32, max_size=3)
                ).map(list),
                max_size=3,
            ),
        },
        optional={"originalStockKind": st.integers(1, 6), "originalId": i64},
    ),
    st.lists(field, max_size=4),
    st.lists(template, max_size=3),
    extra_keys,
)

today = st.tuples(st.integers(0, 100_000), i32).map(list)
deck_common = {
    "id": ids,
    "mod": ids,
    "name": text,
    "usn": i32,
    "lrnToday": today,
    "revToday": today,
    "newToday": today,
    "timeToday": today,
    "collapsed": st.booleans(),
    "browserCollapsed": st.booleans(),
}
day_limit = st.none() | st.fixed_dictionaries({"limit": u32, "today": u32})
normal_decks = st.builds(
    lambda base, extra: {**extra, **base, "dyn": 0},
    st.fixed_dictionaries(
        {
            **deck_common,
            "desc": text,
            "conf": ids,
            "extendNew": u32,
            "extendRev": u32,
            "reviewLimit": st.none() | u32,
            "newLimit": st.none() | u32,
            "reviewLimitToday": day_limit,
            "newLimitToday": day_limit,
            "desiredRetention": st.none() | st.integers(0, 100),
        },
        optional={"md": st.just(True)},
    ),
    extra_keys,
)
filtered_decks = st.builds(
    lambda base, extra: {**extra, **base, "dyn": 1, "desc": "", "separate": True},
    st.fixed_dictionaries(
        {
            **deck_common,
            "resched": st.booleans(),
            "terms": st.lists(st.tuples(text, u32, st.integers(0, 10)).map(list), max_size=2),
            "delays": st.none() | st.lists(f32s, min_size=1, max_size=3),
            "previewDelay": u32,
            "previewAgainSecs": u32,
            "previewHardSecs": u32,
            "previewGoodSecs": u32,
        },
    ),
    extra_keys,
)
deck_configs = st.builds(
    lambda base, new, rev, lapse, extra: {
        **extra,
        **base,
        "new": new,
        "rev": rev,
        "lapse": lapse,
        "dyn": False,
    },
    st.fixed_dictionaries(
        {
            "id": ids,
            "mod": ids,
            "name": text,
            "usn": i32,
            "maxTaken": st.integers(0, 1 << 31 - 1),
            "autoplay": st.booleans(),
            "timer": st.integers(0, 1),
            "replayq": st.booleans(),
            "newMix": st.integers(0, 2),
            "newPerDayMinimum": u32,
            "interdayLearningMix": st.integers(0, 2),
            "reviewOrder": st.integers(0, 12),
            "newSortOrder": st.integers(0, 4),
            "newGatherPriority": st.integers(0, 5),
            "buryInterdayLearning": st.booleans(),
            "fsrsWeights": st.lists(f32s, max_size=3),
            "fsrsParams5": st.lists(f32s, max_size=3),
            "fsrsParams6": st.lists(f32s, max_size=3),
            "desiredRetention": f32s,
            "ignoreRevlogsBeforeDate": text,
            "easyDaysPercentages": st.lists(f32s, max_size=7),
            "stopTimerOnAnswer": st.booleans(),
            "secondsToShowQuestion": f32s,
            "secondsToShowAnswer": f32s,
            "questionAction": st.integers(0, 1),
            "answerAction": st.integers(0, 4),
            "waitForAudio": st.booleans(),
            "sm2Retention": f32s,
            "weightSearch": text,
        }
    ),
    st.builds(
        lambda d, x: {**x, **d},
        st.fixed_dictionaries(
            {
                "bury": st.booleans(),
                "delays": st.lists(f32s, max_size=3),
                "initialFactor": st.integers(0, 65535),
                "ints": st.tuples(st.integers(0, 65535), st.integers(0, 65535), st.just(0)).map(
                    list
                ),
                "order": st.integers(0, 1),
                "perDay": u32,
            }
        ),
        extra_keys,
    ),
    st.builds(
        lambda d, x: {**x, **d},
        st.fixed_dictionaries(
            {
                "bury": st.booleans(),
                "ease4": f32s,
                "ivlFct": f32s,
                "maxIvl": u32,
                "perDay": u32,
                "hardFactor": f32s,
            }
        ),
        extra_keys,
    ),
    st.builds(
        lambda d, x: {**x, **d},
        st.fixed_dictionaries(
            {
                "delays": st.lists(f32s, max_size=3),
                "leechAction": st.integers(0, 1),
                "leechFails": u32,
                "minInt": u32,
                "mult": f32s,
            }
        ),
        extra_keys,
    ),
    extra_keys,
)


def _canonical_deck_name(deck: dict[str, Any]) -> dict[str, Any]:
    return {**deck, "name": "::".join(p.strip() or "blank" for p in deck["name"].split("::"))}


@given(notetypes)
def test_notetypes_round_trip(notetype: dict[str, Any]) -> None:
    once = notetype_rows_to_legacy(notetype_from_legacy(roundtrip_json(notetype)))
    for key, value in notetype.items():
        if key not in ("flds", "tmpls", "did"):
            assert once[key] == value, key
    assert once["did"] == notetype["did"]
    assert [f["name"] for f in once["flds"]] == [f["name"] for f in notetype["flds"]]
    twice = notetype_rows_to_legacy(notetype_from_legacy(roundtrip_json(once)))
    assert twice == once


@given(normal_decks | filtered_decks)
@example(
    {
        "id": 5,
        "mod": 1,
        "name": "A::B",
        "usn": 3,
        "lrnToday": [9, 4],
        "revToday": [10, 2],
        "newToday": [10, 1],
        "timeToday": [10, 100],
        "collapsed": False,
        "browserCollapsed": False,
        "desc": "",
        "conf": 1,
        "extendNew": 0,
        "extendRev": 0,
        "reviewLimit": None,
        "newLimit": None,
        "reviewLimitToday": None,
        "newLimitToday": None,
        "desiredRetention": 90,
        "dyn": 0,
        "return": True,
    }
)
def test_decks_round_trip(deck: dict[str, Any]) -> None:
    once = deck_to_legacy(_row(deck_from_legacy(roundtrip_json(deck))))
    assert "return" not in once
    for key in ("id", "mod", "usn", "collapsed", "browserCollapsed", "dyn", "desc"):
        assert once[key] == deck[key], key
    for key, value in deck.items():
        if key not in ("name", "return", "desiredRetention") and not key.endswith("Today"):
            assert once[key] == value, key
    if deck.get("desiredRetention") is not None:
        # Stored as a float32 fraction; read back with a float32 multiply, then truncated.
        assert once["desiredRetention"] == int(f32(f32(deck["desiredRetention"] / 100) * 100))
    twice = deck_to_legacy(_row(deck_from_legacy(roundtrip_json(once))))
    assert twice == once


def _row(deck: Any) -> tuple[int, str, int, int, bytes, bytes]:
    return (deck.id, deck.name, deck.mtime, deck.usn, deck.common, deck.kind)


@given(deck_configs)
@example(
    {
        "id": 1,
        "mod": 1,
        "name": "",
        "usn": 0,
        "maxTaken": 0,
        "autoplay": False,
        "timer": 0,
        "replayq": False,
        "new": {
            "bury": False,
            "delays": [],
            "initialFactor": 4035,
            "ints": [0, 0, 0],
            "order": 0,
            "perDay": 0,
        },
        "rev": {
            "bury": False,
            "ease4": 0.0,
            "ivlFct": 0.0,
            "maxIvl": 0,
            "perDay": 0,
            "hardFactor": 0.0,
        },
        "lapse": {"delays": [], "leechAction": 0, "leechFails": 0, "minInt": 0, "mult": 0.0},
        "dyn": False,
        "newMix": 0,
        "newPerDayMinimum": 0,
        "interdayLearningMix": 0,
        "reviewOrder": 0,
        "newSortOrder": 0,
        "newGatherPriority": 0,
        "buryInterdayLearning": False,
        "fsrsWeights": [],
        "fsrsParams5": [],
        "fsrsParams6": [],
        "desiredRetention": 0.0,
        "ignoreRevlogsBeforeDate": "",
        "easyDaysPercentages": [],
        "stopTimerOnAnswer": False,
        "secondsToShowQuestion": 0.0,
        "secondsToShowAnswer": 0.0,
        "questionAction": 0,
        "answerAction": 0,
        "waitForAudio": False,
        "sm2Retention": 0.0,
        "weightSearch": "",
    }
)
def test_deck_configs_round_trip(config: dict[str, Any]) -> None:
    row = deck_config_from_legacy(roundtrip_json(config))
    once = deck_config_to_legacy((row.id, row.name, row.mtime, row.usn, row.config))
    # The starting ease is stored as a float32 fraction, and the official client reads it
    # back with a float32 multiply and truncation (4035 comes back as 4034, as there).
    factor = config["new"]["initialFactor"]
    expected = {
        **config,
        "new": {**config["new"], "initialFactor": int(f32(f32(factor / 1000) * 1000))},
    }
    assert once == expected


def _minimal_deck(**values: Any) -> dict[str, Any]:
    """A normal deck with only the keys the reader requires."""
    today = [0, 0]
    return {
        "id": 1,
        "name": "D",
        "usn": 0,
        "lrnToday": today,
        "revToday": today,
        "newToday": today,
        "timeToday": today,
        "collapsed": False,
        "dyn": 0,
        "conf": 1,
        **values,
    }


@pytest.mark.parametrize("percent", [29, 57, 80, 85, 90, 95])
def test_common_desired_retention_percents_survive_float32(percent: int) -> None:
    """Float64 arithmetic would turn 90 into 89; the official client keeps these."""
    deck = _minimal_deck(desiredRetention=percent)
    assert deck_to_legacy(_row(deck_from_legacy(deck)))["desiredRetention"] == percent


def test_today_counters_from_an_older_day_are_zeroed() -> None:
    deck = _minimal_deck(lrnToday=[9, 4], revToday=[10, 2], newToday=[10, 1], timeToday=[10, 100])
    out = deck_to_legacy(_row(deck_from_legacy(deck)))
    assert out["lrnToday"] == [10, 0] and out["revToday"] == [10, 2]


def test_deck_names_are_normalised() -> None:
    deck = _minimal_deck(name=" Spacey ::Child::", dyn=False, conf="1")
    assert deck_from_legacy(deck).name == "Spacey\x1fChild\x1fblank"


def test_a_broken_deck_config_section_becomes_the_defaults() -> None:
    config = {
        "id": 1,
        "mod": 1,
        "name": "x",
        "usn": 0,
        "maxTaken": 60,
        "autoplay": True,
        "timer": 0,
        "new": {"perDay": 99, "initialFactor": 2500.0},
        "rev": {},
        "lapse": {},
    }
    row = deck_config_from_legacy(config)
    out = deck_config_to_legacy((1, "x", 1, 0, row.config))
    assert out["new"]["perDay"] == 20 and out["rev"]["perDay"] == 200


_NOTETYPE = {
    "id": 1,
    "name": "n",
    "type": 0,
    "mod": 1,
    "usn": 0,
    "sortf": 0,
    "did": None,
    "tmpls": [],
    "flds": [],
    "css": "",
}


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"id": 1},
        {**_NOTETYPE, "id": "x"},
        {**_NOTETYPE, "type": 2},
        {k: v for k, v in _NOTETYPE.items() if k != "did"},
    ],
    ids=["empty", "id-only", "id-not-a-number", "type-2", "no-did"],
)
def test_notetypes_breaking_the_reading_rules_are_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(LegacyFormatError):
        notetype_from_legacy(broken)


def test_the_minimal_notetype_is_accepted() -> None:
    assert notetype_from_legacy(dict(_NOTETYPE)).name == "n"


@given(st.floats(width=32, allow_nan=False))
def test_short_float32_reads_back_exactly(value: float) -> None:
    assert f32(short_f32(value)) == f32(value)


@given(st.binary(max_size=200))
def test_arbitrary_blobs_decode_or_raise_value_error(data: bytes) -> None:
    for message in (schemas.DECK_CONFIG, schemas.NOTETYPE_CONFIG, schemas.DECK_KIND):
        try:
            decoded = decode(message, data)
        except ValueError:
            continue
        assert decode(message, encode(message, decoded)) == decoded


def test_unknown_fields_survive_reencoding() -> None:
    blob = encode(schemas.DECK_COMMON, {"study_collapsed": True}) + bytes([0xB8, 0x06, 0x2A])
    decoded = decode(schemas.DECK_COMMON, blob)
    assert encode(schemas.DECK_COMMON, decoded) == blob


def test_negative_ints_are_ten_byte_varints() -> None:
    blob = encode(schemas.FIELD_CONFIG, {"id": -4927405563404548561})
    assert len(blob) == 1 + 10
    assert decode(schemas.FIELD_CONFIG, blob)["id"] == -4927405563404548561
