"""Field tables of the protobuf messages in schema-18 blobs (numbers are protocol facts)."""

from __future__ import annotations

from ankisyncd.storage.legacy.proto import Field, Message

OTHER = Field(255, "other", "bytes")

CARD_REQUIREMENT = Message(
    "CardRequirement",
    (
        Field(1, "card_ord", "uint32"),
        Field(2, "kind", "enum"),
        Field(3, "field_ords", "uint32", repeated=True),
    ),
)

NOTETYPE_CONFIG = Message(
    "Notetype.Config",
    (
        Field(1, "kind", "enum"),
        Field(2, "sort_field_idx", "uint32"),
        Field(3, "css", "string"),
        Field(4, "target_deck_id_unused", "int64"),
        Field(5, "latex_pre", "string"),
        Field(6, "latex_post", "string"),
        Field(7, "latex_svg", "bool"),
        Field(8, "reqs", "message", repeated=True, message=CARD_REQUIREMENT),
        Field(9, "original_stock_kind", "enum"),
        Field(10, "original_id", "int64", optional=True),
        OTHER,
    ),
)

FIELD_CONFIG = Message(
    "Notetype.Field.Config",
    (
        Field(1, "sticky", "bool"),
        Field(2, "rtl", "bool"),
        Field(3, "font_name", "string"),
        Field(4, "font_size", "uint32"),
        Field(5, "description", "string"),
        Field(6, "plain_text", "bool"),
        Field(7, "collapsed", "bool"),
        Field(8, "exclude_from_search", "bool"),
        Field(9, "id", "int64", optional=True),
        Field(10, "tag", "uint32", optional=True),
        Field(11, "prevent_deletion", "bool"),
        OTHER,
    ),
)

TEMPLATE_CONFIG = Message(
    "Notetype.Template.Config",
    (
        Field(1, "q_format", "string"),
        Field(2, "a_format", "string"),
        Field(3, "q_format_browser", "string"),
        Field(4, "a_format_browser", "string"),
        Field(5, "target_deck_id", "int64"),
        Field(6, "browser_font_name", "string"),
        Field(7, "browser_font_size", "uint32"),
        Field(8, "id", "int64", optional=True),
        OTHER,
    ),
)

DECK_COMMON = Message(
    "Deck.Common",
    (
        Field(1, "study_collapsed", "bool"),
        Field(2, "browser_collapsed", "bool"),
        Field(3, "last_day_studied", "uint32"),
        Field(4, "new_studied", "int32"),
        Field(5, "review_studied", "int32"),
        Field(6, "learning_studied", "int32"),
        Field(7, "milliseconds_studied", "int32"),
        OTHER,
    ),
)

DAY_LIMIT = Message(
    "Deck.Normal.DayLimit", (Field(1, "limit", "uint32"), Field(2, "today", "uint32"))
)

DECK_NORMAL = Message(
    "Deck.Normal",
    (
        Field(1, "config_id", "int64"),
        Field(2, "extend_new", "uint32"),
        Field(3, "extend_review", "uint32"),
        Field(4, "description", "string"),
        Field(5, "markdown_description", "bool"),
        Field(6, "review_limit", "uint32", optional=True),
        Field(7, "new_limit", "uint32", optional=True),
        Field(8, "review_limit_today", "message", message=DAY_LIMIT),
        Field(9, "new_limit_today", "message", message=DAY_LIMIT),
        Field(10, "desired_retention", "float", optional=True),
    ),
)

SEARCH_TERM = Message(
    "Deck.Filtered.SearchTerm",
    (Field(1, "search", "string"), Field(2, "limit", "uint32"), Field(3, "order", "enum")),
)

DECK_FILTERED = Message(
    "Deck.Filtered",
    (
        Field(1, "reschedule", "bool"),
        Field(2, "search_terms", "message", repeated=True, message=SEARCH_TERM),
        Field(3, "delays", "float", repeated=True),
        Field(4, "preview_delay", "uint32"),
        Field(5, "preview_hard_secs", "uint32"),
        Field(6, "preview_good_secs", "uint32"),
        Field(7, "preview_again_secs", "uint32"),
    ),
)

DECK_KIND = Message(
    "Deck.KindContainer",
    (
        Field(1, "normal", "message", message=DECK_NORMAL),
        Field(2, "filtered", "message", message=DECK_FILTERED),
    ),
)

_F, _U, _B, _E = "float", "uint32", "bool", "enum"
DECK_CONFIG = Message(
    "DeckConfig.Config",
    (
        Field(1, "learn_steps", _F, repeated=True),
        Field(2, "relearn_steps", _F, repeated=True),
        Field(3, "fsrs_params_4", _F, repeated=True),
        Field(4, "easy_days_percentages", _F, repeated=True),
        Field(5, "fsrs_params_5", _F, repeated=True),
        Field(6, "fsrs_params_6", _F, repeated=True),
        Field(9, "new_per_day", _U),
        Field(10, "reviews_per_day", _U),
        Field(11, "initial_ease", _F),
        Field(12, "easy_multiplier", _F),
        Field(13, "hard_multiplier", _F),
        Field(14, "lapse_multiplier", _F),
        Field(15, "interval_multiplier", _F),
        Field(16, "maximum_review_interval", _U),
        Field(17, "minimum_lapse_interval", _U),
        Field(18, "graduating_interval_good", _U),
        Field(19, "graduating_interval_easy", _U),
        Field(20, "new_card_insert_order", _E),
        Field(21, "leech_action", _E),
        Field(22, "leech_threshold", _U),
        Field(23, "disable_autoplay", _B),
        Field(24, "cap_answer_time_to_secs", _U),
        Field(25, "show_timer", _B),
        Field(26, "skip_question_when_replaying_answer", _B),
        Field(27, "bury_new", _B),
        Field(28, "bury_reviews", _B),
        Field(29, "bury_interday_learning", _B),
        Field(30, "new_mix", _E),
        Field(31, "interday_learning_mix", _E),
        Field(32, "new_card_sort_order", _E),
        Field(33, "review_order", _E),
        Field(34, "new_card_gather_priority", _E),
        Field(35, "new_per_day_minimum", _U),
        Field(36, "question_action", _E),
        Field(37, "desired_retention", _F),
        Field(38, "stop_timer_on_answer", _B),
        Field(40, "historical_retention", _F),
        Field(41, "seconds_to_show_question", _F),
        Field(42, "seconds_to_show_answer", _F),
        Field(43, "answer_action", _E),
        Field(44, "wait_for_audio", _B),
        Field(45, "param_search", "string"),
        Field(46, "ignore_revlogs_before_date", "string"),
        OTHER,
    ),
)
