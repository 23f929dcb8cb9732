"""Schema 11, the collection format of legacy clients (sync versions 8 to 10).

``downgrade`` turns a *copy* of a stored schema-18 file into schema 11 for a legacy full
download; ``upgrade`` builds a schema-18 file from a legacy full upload. The stored
collection itself is never converted in place.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from ankisyncd.storage.collection import TEMPLATE
from ankisyncd.storage.legacy.deck import deck_from_legacy, deck_to_legacy
from ankisyncd.storage.legacy.deckconfig import deck_config_from_legacy, deck_config_to_legacy
from ankisyncd.storage.legacy.notetype import notetype_from_legacy, read_notetypes
from ankisyncd.storage.legacy.values import LegacyFormatError
from ankisyncd.storage.sqlite import connect
from ankisyncd.storage.upload import COL_COLUMNS, SCHEMA_18_TABLES, InvalidCollection

LEGACY_TABLES = {
    **{t: SCHEMA_18_TABLES[t] for t in ("notes", "cards", "revlog")},
    "graves": ("usn", "oid", "type"),
}
SCHEMA_18_ONLY_TABLES = (
    "config",
    "deck_config",
    "tags",
    "fields",
    "templates",
    "notetypes",
    "decks",
)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def downgrade(path: Path) -> None:
    """Convert the schema-18 collection at ``path`` (a copy!) to schema 11, rollback journal."""
    con = connect(path)
    try:
        con.execute("begin exclusive")
        for statement in (
            "alter table graves rename to graves18",
            "create table graves (usn integer not null, oid integer not null,"
            " type integer not null)",
            "insert into graves (usn, oid, type) select usn, oid, type from graves18",
            "drop table graves18",
        ):
            con.execute(statement)
        models = {
            str(model["id"]): model
            for model in read_notetypes(
                con, "select id, name, mtime_secs, usn, config from notetypes"
            )
        }
        decks = {
            str(row[0]): deck_to_legacy(row)
            for row in con.execute("select id, name, mtime_secs, usn, common, kind from decks")
        }
        dconf = {
            str(row[0]): deck_config_to_legacy(row)
            for row in con.execute("select id, name, mtime_secs, usn, config from deck_config")
        }
        conf = {key: json.loads(val) for key, val in con.execute("select KEY, val from config")}
        tags = dict(con.execute("select tag, usn from tags").fetchall())
        con.execute(
            "update col set ver = 11, conf = ?, models = ?, decks = ?, dconf = ?, tags = ?",
            tuple(_compact(v) for v in (conf, models, decks, dconf, tags)),
        )
        for table in SCHEMA_18_ONLY_TABLES:
            con.execute(f"drop table {table}")
        con.execute("drop index if exists idx_cards_odid")
        con.execute("drop index if exists idx_notes_mid")
        con.execute("commit")
        con.execute("pragma journal_mode = delete")
    finally:
        con.close()


def upgrade(legacy: Path, target: Path) -> None:
    """Build a schema-18 collection at ``target`` from the schema-11 file ``legacy``.

    Objects the conversion changes (deck names made valid or unique) are stamped with the
    collection's usn, never with -1, so the next normal sync's sanity check cannot fail.
    Raises InvalidCollection when the legacy file cannot be read.
    """
    source = connect(legacy)
    try:
        col = _read_legacy(source)
    finally:
        source.close()
    shutil.copyfile(TEMPLATE, target)
    con = connect(target)
    try:
        con.execute("attach database ? as up", (str(legacy),))
        con.execute("begin exclusive")
        for table in (
            "notetypes",
            "fields",
            "templates",
            "decks",
            "deck_config",
            "config",
            "tags",
            "graves",
        ):
            con.execute(f"delete from {table}")
        for table, columns in LEGACY_TABLES.items():
            if table == "graves":
                continue
            names = ", ".join(columns)
            con.execute(f"insert into main.{table} ({names}) select {names} from up.{table}")
        # Duplicate graves collapse; the first one's usn is kept.
        con.execute(
            "insert or ignore into main.graves (oid, type, usn)"
            " select oid, type, usn from up.graves order by rowid"
        )
        con.execute(
            "update main.col set crt = ?, mod = ?, scm = ?, dty = ?, usn = ?, ls = ?",
            (col["crt"], col["mod"], col["scm"], col["dty"], col["usn"], col["ls"]),
        )
        _store_objects(con, col)
        con.execute("commit")
        con.execute("detach database up")
        if con.execute("pragma integrity_check").fetchall() != [("ok",)]:
            raise InvalidCollection("upgraded collection fails the integrity check")
    except sqlite3.Error as exc:
        raise InvalidCollection(f"cannot upgrade: {exc}") from exc
    finally:
        con.close()


def _read_legacy(con: sqlite3.Connection) -> dict[str, Any]:
    if con.execute("pragma integrity_check").fetchall() != [("ok",)]:
        raise InvalidCollection("integrity check failed")
    present = {r[1] for r in con.execute("pragma table_info(col)")}
    if not set(COL_COLUMNS) <= present:
        raise InvalidCollection("col lacks columns")
    for table, columns in LEGACY_TABLES.items():
        have = {r[1] for r in con.execute(f"pragma table_info({table})")}
        if not set(columns) <= have:
            raise InvalidCollection(f"table {table} lacks columns")
    rows = con.execute(
        "select crt, mod, scm, ver, dty, usn, ls, conf, models, decks, dconf, tags from col"
    ).fetchall()
    if len(rows) != 1 or rows[0][3] != 11:
        raise InvalidCollection("not a schema-11 collection")
    crt, mod, scm, _ver, dty, usn, ls, *blobs = rows[0]
    try:
        conf, models, decks, dconf, tags = (json.loads(b) for b in blobs)
    except (TypeError, ValueError) as exc:
        raise InvalidCollection("a JSON column does not parse") from exc
    if not all(isinstance(v, dict) for v in (conf, models, decks, dconf, tags)):
        raise InvalidCollection("a JSON column is not an object")
    return {
        "crt": crt,
        "mod": mod,
        "scm": scm,
        "dty": dty,
        "usn": usn,
        "ls": ls,
        "conf": conf,
        "models": models,
        "decks": decks,
        "dconf": dconf,
        "tags": tags,
    }


def _store_objects(con: sqlite3.Connection, col: dict[str, Any]) -> None:
    usn, now = col["usn"], int(time.time())
    try:
        for key, value in col["dconf"].items():
            value = {**value, "id": int(key)}  # the map key is trusted for deck configs
            dc = deck_config_from_legacy(value)
            con.execute(
                "insert or replace into deck_config (id, name, mtime_secs, usn, config)"
                " values (?,?,?,?,?)",
                (dc.id, dc.name, dc.mtime, max(dc.usn, 0), dc.config),
            )
        for value in col["decks"].values():
            deck = deck_from_legacy(value)
            name, mtime, deck_usn = deck.name, deck.mtime, max(deck.usn, 0)
            if name != value.get("name", "").replace("::", "\x1f"):
                mtime, deck_usn = now, usn
            while con.execute("select 1 from decks where name = ?", (name,)).fetchone():
                name, mtime, deck_usn = name + "_", now, usn
            con.execute(
                "insert into decks (id, name, mtime_secs, usn, common, kind) values (?,?,?,?,?,?)",
                (deck.id, name, mtime, deck_usn, deck.common, deck.kind),
            )
        for key, value in col["models"].items():
            nt = notetype_from_legacy(value)
            ntid = nt.id or int(key) or random.randint(1, 1 << 53)
            name = nt.name
            while con.execute("select 1 from notetypes where name = ?", (name,)).fetchone():
                name += "_"
            con.execute(
                "insert into notetypes (id, name, mtime_secs, usn, config) values (?,?,?,?,?)",
                (ntid, name, nt.mtime, max(nt.usn, 0), nt.config),
            )
            for table, items in (("fields", nt.fields), ("templates", nt.templates)):
                seen: set[str] = set()
                for ord_, (item_name, config) in enumerate(items):
                    while item_name.casefold() in seen:
                        item_name += "+"
                    seen.add(item_name.casefold())
                    if table == "fields":
                        con.execute(
                            "insert into fields (ntid, ord, name, config) values (?,?,?,?)",
                            (ntid, ord_, item_name, config),
                        )
                    else:
                        con.execute(
                            "insert into templates (ntid, ord, name, mtime_secs, usn, config)"
                            " values (?,?,?,0,0,?)",
                            (ntid, ord_, item_name, config),
                        )
    except (LegacyFormatError, ValueError, TypeError) as exc:
        raise InvalidCollection(f"a legacy object does not convert: {exc}") from exc
    con.executemany(
        "insert into config (KEY, usn, mtime_secs, val) values (?, 0, 0, ?)",
        [(k, _compact(v).encode()) for k, v in col["conf"].items()],
    )
    con.executemany(
        "insert or ignore into tags (tag, usn, collapsed, config) values (?, ?, 1, null)",
        [
            (tag, max(int(t_usn), 0) if isinstance(t_usn, int) else 0)
            for tag, t_usn in col["tags"].items()
        ],
    )
