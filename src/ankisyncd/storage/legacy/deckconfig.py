"""Deck configs (deck options presets): legacy JSON <-> ``deck_config`` rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ankisyncd.storage.legacy import schemas
from ankisyncd.storage.legacy.proto import decode, encode
from ankisyncd.storage.legacy.values import (
    I32,
    U16,
    U32,
    LegacyFormatError,
    f32,
    in_range,
    is_bool,
    is_float_list,
    is_number,
    is_str,
    lenient,
    lenient_required,
    load_other,
    obj_of,
    optional,
    required,
    required_id,
    short_f32,
    unknown_keys,
)

TOP_KEYS = [
    "id",
    "mod",
    "name",
    "usn",
    "dyn",
    "maxTaken",
    "autoplay",
    "timer",
    "replayq",
    "newMix",
    "newPerDayMinimum",
    "interdayLearningMix",
    "reviewOrder",
    "newSortOrder",
    "newGatherPriority",
    "buryInterdayLearning",
    "fsrsWeights",
    "fsrsParams5",
    "fsrsParams6",
    "desiredRetention",
    "ignoreRevlogsBeforeDate",
    "easyDaysPercentages",
    "stopTimerOnAnswer",
    "secondsToShowQuestion",
    "secondsToShowAnswer",
    "questionAction",
    "answerAction",
    "waitForAudio",
    "sm2Retention",
    "weightSearch",
]
NEW_KEYS = ["bury", "delays", "initialFactor", "ints", "order", "perDay"]
REV_KEYS = ["bury", "ease4", "ivlFct", "maxIvl", "perDay", "hardFactor"]
LAPSE_KEYS = ["delays", "leechAction", "leechFails", "minInt", "mult"]
SECTIONS = {"new": NEW_KEYS, "rev": REV_KEYS, "lapse": LAPSE_KEYS}


@dataclass(frozen=True)
class DeckConfigRow:
    id: int
    name: str
    mtime: int
    usn: int
    config: bytes


def _floats(value: list[Any]) -> list[float]:
    return [f32(v) for v in value]


def _new(value: Any) -> dict[str, Any]:
    obj = obj_of(value, "new")
    ints = obj.get("ints")
    if not (isinstance(ints, list) and len(ints) >= 2 and all(U16(i) for i in ints)):
        ints = [1, 4]
    if "ints" not in obj:
        raise LegacyFormatError("missing key 'ints'")
    return {
        "bury": optional(obj, "bury", is_bool, False),
        "delays": lenient_required(obj, "delays", is_float_list, []),
        "initialFactor": required(obj, "initialFactor", U16),
        "ints": ints,
        "order": lenient_required(obj, "order", in_range(0, 1), 1),
        "perDay": lenient_required(obj, "perDay", U32, 0),
        "other": unknown_keys(obj, NEW_KEYS),
    }


def _rev(value: Any) -> dict[str, Any]:
    obj = obj_of(value, "rev")
    return {
        "bury": optional(obj, "bury", is_bool, False),
        "ease4": required(obj, "ease4", is_number),
        "ivlFct": required(obj, "ivlFct", is_number),
        "maxIvl": required(obj, "maxIvl", U32),
        "perDay": lenient_required(obj, "perDay", U32, 0),
        "hardFactor": optional(obj, "hardFactor", is_number, 1.2),
        "other": unknown_keys(obj, REV_KEYS),
    }


def _lapse(value: Any) -> dict[str, Any]:
    obj = obj_of(value, "lapse")
    return {
        "delays": lenient_required(obj, "delays", is_float_list, []),
        "leechAction": lenient_required(obj, "leechAction", in_range(0, 1), 1),
        "leechFails": required(obj, "leechFails", U32),
        "minInt": required(obj, "minInt", U32),
        "mult": required(obj, "mult", is_number),
        "other": unknown_keys(obj, LAPSE_KEYS),
    }


DEFAULT_SECTIONS: dict[str, dict[str, Any]] = {
    "new": {
        "bury": False,
        "delays": [1.0, 10.0],
        "initialFactor": 2500,
        "ints": [1, 4],
        "order": 1,
        "perDay": 20,
        "other": {},
    },
    "rev": {
        "bury": False,
        "ease4": 1.3,
        "ivlFct": 1.0,
        "maxIvl": 36500,
        "perDay": 200,
        "hardFactor": 1.2,
        "other": {},
    },
    "lapse": {
        "delays": [10.0],
        "leechAction": 1,
        "leechFails": 8,
        "minInt": 1,
        "mult": 0.0,
        "other": {},
    },
}
_READERS = {"new": _new, "rev": _rev, "lapse": _lapse}


def _section(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """A section that fails to read becomes the defaults, silently, as in the official client."""
    if name not in obj:
        raise LegacyFormatError(f"missing key {name!r}")
    try:
        return _READERS[name](obj[name])
    except LegacyFormatError:
        return DEFAULT_SECTIONS[name]


def deck_config_from_legacy(value: Any) -> DeckConfigRow:
    """Read one deck config; raises LegacyFormatError where the official client would fail."""
    obj = obj_of(value, "deck config")
    new, rev, lapse = (_section(obj, name) for name in ("new", "rev", "lapse"))
    other = unknown_keys(obj, [*TOP_KEYS, "new", "rev", "lapse"])
    for name, section in (("new", new), ("rev", rev), ("lapse", lapse)):
        if section["other"]:
            other[name] = section["other"]
    config = {
        "learn_steps": _floats(new["delays"]),
        "relearn_steps": _floats(lapse["delays"]),
        "fsrs_params_4": _floats(optional(obj, "fsrsWeights", is_float_list, [])),
        "easy_days_percentages": _floats(optional(obj, "easyDaysPercentages", is_float_list, [])),
        "fsrs_params_5": _floats(optional(obj, "fsrsParams5", is_float_list, [])),
        "fsrs_params_6": _floats(optional(obj, "fsrsParams6", is_float_list, [])),
        "new_per_day": new["perDay"],
        "reviews_per_day": rev["perDay"],
        "initial_ease": f32(f32(new["initialFactor"]) / 1000),
        "easy_multiplier": f32(rev["ease4"]),
        "hard_multiplier": f32(rev["hardFactor"]),
        "lapse_multiplier": f32(lapse["mult"]),
        "interval_multiplier": f32(rev["ivlFct"]),
        "maximum_review_interval": rev["maxIvl"],
        "minimum_lapse_interval": lapse["minInt"],
        "graduating_interval_good": new["ints"][0],
        "graduating_interval_easy": new["ints"][1],
        "new_card_insert_order": 1 - new["order"],  # legacy 1 = due is stored as 0
        "leech_action": lapse["leechAction"],
        "leech_threshold": lapse["leechFails"],
        "disable_autoplay": not required(obj, "autoplay", is_bool),
        "cap_answer_time_to_secs": max(0, required(obj, "maxTaken", I32)),
        "show_timer": lenient_required(obj, "timer", in_range(0, 255), 0) != 0,
        "skip_question_when_replaying_answer": not optional(obj, "replayq", is_bool, False),
        "bury_new": new["bury"],
        "bury_reviews": rev["bury"],
        "bury_interday_learning": optional(obj, "buryInterdayLearning", is_bool, False),
        "new_mix": optional(obj, "newMix", I32, 0),
        "interday_learning_mix": optional(obj, "interdayLearningMix", I32, 0),
        "new_card_sort_order": optional(obj, "newSortOrder", I32, 0),
        "review_order": optional(obj, "reviewOrder", I32, 0),
        "new_card_gather_priority": optional(obj, "newGatherPriority", I32, 0),
        "new_per_day_minimum": optional(obj, "newPerDayMinimum", U32, 0),
        "question_action": optional(obj, "questionAction", in_range(0, 1), 0),
        "desired_retention": f32(optional(obj, "desiredRetention", is_number, 0.0)),
        "stop_timer_on_answer": optional(obj, "stopTimerOnAnswer", is_bool, False),
        "historical_retention": f32(optional(obj, "sm2Retention", is_number, 0.0)),
        "seconds_to_show_question": f32(optional(obj, "secondsToShowQuestion", is_number, 0.0)),
        "seconds_to_show_answer": f32(optional(obj, "secondsToShowAnswer", is_number, 0.0)),
        "answer_action": optional(obj, "answerAction", in_range(0, 4), 0),
        "wait_for_audio": optional(obj, "waitForAudio", is_bool, True),
        "param_search": optional(obj, "weightSearch", is_str, ""),
        "ignore_revlogs_before_date": optional(obj, "ignoreRevlogsBeforeDate", is_str, ""),
        "other": json.dumps(other, separators=(",", ":"), ensure_ascii=False).encode()
        if other
        else b"",
    }
    lenient(obj, "dyn", is_bool, False)
    return DeckConfigRow(
        id=required_id(obj, "id"),
        name=required(obj, "name", is_str),
        mtime=required_id(obj, "mod"),
        usn=required(obj, "usn", I32),
        config=encode(schemas.DECK_CONFIG, config),
    )


def _short(values: list[float]) -> list[float]:
    return [short_f32(v) for v in values]


def deck_config_to_legacy(row: tuple[int, str, int, int, bytes]) -> dict[str, Any]:
    """Build the legacy JSON of a ``deck_config`` row."""
    dcid, name, mtime, usn, blob = row
    c = decode(schemas.DECK_CONFIG, blob)
    other = load_other(c["other"], ())
    extras = {}
    for section, keys in SECTIONS.items():
        value = other.pop(section, {})
        extras[section] = (
            {k: v for k, v in value.items() if k not in keys} if isinstance(value, dict) else {}
        )
    other = {k: v for k, v in other.items() if k not in TOP_KEYS}
    out: dict[str, Any] = {
        "id": dcid,
        "mod": mtime,
        "name": name,
        "usn": usn,
        "maxTaken": c["cap_answer_time_to_secs"],
        "autoplay": not c["disable_autoplay"],
        "timer": 1 if c["show_timer"] else 0,
        "replayq": not c["skip_question_when_replaying_answer"],
        "new": {
            "bury": c["bury_new"],
            "delays": _short(c["learn_steps"]),
            "initialFactor": int(f32(c["initial_ease"] * 1000)),
            "ints": [
                c["graduating_interval_good"] & 0xFFFF,
                c["graduating_interval_easy"] & 0xFFFF,
                0,
            ],
            "order": 0 if c["new_card_insert_order"] == 1 else 1,
            "perDay": c["new_per_day"],
            **extras["new"],
        },
        "rev": {
            "bury": c["bury_reviews"],
            "ease4": short_f32(c["easy_multiplier"]),
            "ivlFct": short_f32(c["interval_multiplier"]),
            "maxIvl": c["maximum_review_interval"],
            "perDay": c["reviews_per_day"],
            "hardFactor": short_f32(c["hard_multiplier"]),
            **extras["rev"],
        },
        "lapse": {
            "delays": _short(c["relearn_steps"]),
            "leechAction": 1 if c["leech_action"] == 1 else 0,
            "leechFails": c["leech_threshold"],
            "minInt": c["minimum_lapse_interval"],
            "mult": short_f32(c["lapse_multiplier"]),
            **extras["lapse"],
        },
        "dyn": False,
        "newMix": c["new_mix"],
        "newPerDayMinimum": c["new_per_day_minimum"],
        "interdayLearningMix": c["interday_learning_mix"],
        "reviewOrder": c["review_order"],
        "newSortOrder": c["new_card_sort_order"],
        "newGatherPriority": c["new_card_gather_priority"],
        "buryInterdayLearning": c["bury_interday_learning"],
        "fsrsWeights": _short(c["fsrs_params_4"]),
        "fsrsParams5": _short(c["fsrs_params_5"]),
        "fsrsParams6": _short(c["fsrs_params_6"]),
        "desiredRetention": short_f32(c["desired_retention"]),
        "ignoreRevlogsBeforeDate": c["ignore_revlogs_before_date"],
        "easyDaysPercentages": _short(c["easy_days_percentages"]),
        "stopTimerOnAnswer": c["stop_timer_on_answer"],
        "secondsToShowQuestion": short_f32(c["seconds_to_show_question"]),
        "secondsToShowAnswer": short_f32(c["seconds_to_show_answer"]),
        "questionAction": 1 if c["question_action"] == 1 else 0,
        "answerAction": c["answer_action"] if c["answer_action"] in range(5) else 0,
        "waitForAudio": c["wait_for_audio"],
        "sm2Retention": short_f32(c["historical_retention"]),
        "weightSearch": c["param_search"],
    }
    out.update(other)
    return out
