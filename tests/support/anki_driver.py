"""Drive one device (a real ``anki`` Collection) through sync steps; runs in any client venv.

Usage: python anki_driver.py DEVICE_DIR STEPS_JSON. Prints one JSON result per step, as a list.
Works with anki 2.1.66 and later (the sync API differences are handled here). Standard library
and ``anki`` only: it runs under the interpreter of an older client's venv.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from anki.collection import Collection

TABLES = {
    "notes": "select id, guid, mid, mod, usn, tags, flds, sfld, csum, flags, data from notes",
    "cards": "select * from cards",
    "revlog": "select * from revlog",
    "graves": "select * from graves",
    "notetypes": "select id, name, mtime_secs, usn, hex(config) from notetypes",
    "fields": "select ntid, ord, name, hex(config) from fields",
    "templates": "select ntid, ord, name, mtime_secs, usn, hex(config) from templates",
    "decks": "select id, name, mtime_secs, usn, hex(common), hex(kind) from decks",
    "deck_config": "select id, name, mtime_secs, usn, hex(config) from deck_config",
    "config": "select KEY, usn, mtime_secs, hex(val) from config",
    "tags": "select tag, usn, collapsed from tags",
    "col": "select crt, mod, scm, ver, usn, ls from col",
}


class Device:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.auth_file = folder / "auth.json"
        self.col = Collection(str(folder / "collection.anki2"))
        # Before 23.10, Python holds a long transaction that must be committed around syncs.
        self.long_transaction = "trx" in inspect.signature(self.col.save).parameters
        if self.auth_file.exists():
            self._point_at(json.loads(self.auth_file.read_text())["endpoint"])
        custom = folder / "custom_certificate.pem"
        if custom.exists():  # the setting AnkiDroid shows; a backend method from 24.11 on
            assert self.col._backend.set_custom_certificate(custom.read_text())

    # --- auth -------------------------------------------------------------------------
    @staticmethod
    def _point_at(endpoint: str) -> None:
        # Desktop 2.1.50-2.1.56 (sync v10) take the server from these variables.
        os.environ["SYNC_ENDPOINT"] = endpoint + "sync/"
        os.environ["SYNC_ENDPOINT_MEDIA"] = endpoint + "msync/"

    def auth(self) -> Any:
        saved = json.loads(self.auth_file.read_text())
        from anki.sync import SyncAuth

        if "endpoint" in SyncAuth.DESCRIPTOR.fields_by_name:
            return SyncAuth(hkey=saved["hkey"], endpoint=saved["endpoint"])
        return SyncAuth(hkey=saved["hkey"], host_number=0)

    def login(self, user: str, password: str, endpoint: str) -> dict[str, Any]:
        self._point_at(endpoint)
        if "endpoint" in inspect.signature(self.col.sync_login).parameters:
            auth = self.col.sync_login(user, password, endpoint)
        else:
            auth = self.col.sync_login(user, password)
        self.auth_file.write_text(json.dumps({"hkey": auth.hkey, "endpoint": endpoint}))
        return {"hkey": auth.hkey}

    def set_hkey(self, hkey: str, endpoint: str) -> dict[str, Any]:
        self.auth_file.write_text(json.dumps({"hkey": hkey, "endpoint": endpoint}))
        return {}

    # --- sync -------------------------------------------------------------------------
    def sync(self) -> dict[str, Any]:
        params = inspect.signature(self.col.sync_collection).parameters
        if self.long_transaction:
            self.col.save(trx=False)
        try:
            if "sync_media" in params:
                out = self.col.sync_collection(self.auth(), False)
            else:
                out = self.col.sync_collection(self.auth())
        finally:
            if self.long_transaction:
                self.col.db.begin()
        return {"required": int(out.required), "server_message": out.server_message}

    def full_sync(self, upload: bool) -> dict[str, Any]:
        if hasattr(self.col, "full_upload_or_download"):
            self.col.full_upload_or_download(auth=self.auth(), server_usn=None, upload=upload)
            return {}
        self.col.close_for_full_sync()
        try:
            if upload:
                self.col.full_upload(self.auth())
            else:
                self.col.full_download(self.auth())
        finally:
            self.col.reopen(after_full_sync=True)
        return {}

    # --- content ----------------------------------------------------------------------
    def add_notes(self, count: int, prefix: str, deck: str = "Default") -> dict[str, Any]:
        deck_id = self.col.decks.id(deck)
        basic = self.col.models.by_name("Basic (and reversed card)")
        for i in range(count):
            note = self.col.new_note(basic)
            note["Front"] = f"{prefix} front {i} <b>bold</b> &amp; more"
            note["Back"] = f"{prefix} back {i} — ünïcödé 日本語"
            note.tags = [f"{prefix}_tag", "shared::child"]
            self.col.add_note(note, deck_id)
        return {"notes": self.col.note_count()}

    def answer_cards(self, count: int) -> dict[str, Any]:
        answered = 0
        for _ in range(count):
            card = self.col.sched.getCard()
            if card is None:
                break
            card.start_timer()
            self.col.sched.answerCard(card, 3)
            answered += 1
        return {"answered": answered}

    def edit_notes(self, count: int, text: str) -> dict[str, Any]:
        """Change the Front of the ``count`` oldest notes."""
        nids = self.col.db.list("select id from notes order by id limit ?", count)
        for nid in nids:
            note = self.col.get_note(nid)
            note[note.keys()[0]] = f"{text} {nid}"
            note.tags = [*note.tags, "edited"]
            self.col.update_note(note)
        return {"edited": len(nids)}

    def delete_notes(self, count: int) -> dict[str, Any]:
        """Delete the ``count`` newest notes (and so their cards)."""
        nids = self.col.db.list("select id from notes order by id desc limit ?", count)
        self.col.remove_notes(nids)
        return {"deleted": len(nids)}

    def add_deck(self, name: str) -> dict[str, Any]:
        return {"id": self.col.decks.id(name)}

    def rename_deck(self, old: str, new: str) -> dict[str, Any]:
        deck = self.col.decks.by_name(old)
        self.col.decks.rename(deck, new)
        return {}

    def remove_deck(self, name: str) -> dict[str, Any]:
        self.col.decks.remove([self.col.decks.id_for_name(name)])
        return {}

    def add_filtered_deck(self, name: str, search: str) -> dict[str, Any]:
        deck = self.col.sched.get_or_create_filtered_deck(deck_id=0)
        deck.name = name
        deck.config.search_terms[0].search = search
        return {"id": self.col.sched.add_or_update_filtered_deck(deck).id}

    def add_notetype(self, name: str) -> dict[str, Any]:
        notetype = self.col.models.copy(self.col.models.by_name("Basic"))
        notetype["name"] = name
        self.col.models.update_dict(notetype)
        return {"id": notetype["id"]}

    def edit_template(self, notetype: str, qfmt: str) -> dict[str, Any]:
        nt = self.col.models.by_name(notetype)
        nt["tmpls"][0]["qfmt"] = qfmt
        nt["css"] += "\n.extra { color: red; }"
        self.col.models.update_dict(nt)
        return {}

    def add_field(self, notetype: str, field: str) -> dict[str, Any]:
        nt = self.col.models.by_name(notetype)
        self.col.models.add_field(nt, self.col.models.new_field(field))
        self.col.models.update_dict(nt)
        return {}

    def set_deck_options(self, new_per_day: int, rev_per_day: int) -> dict[str, Any]:
        conf = self.col.decks.get_config(1)
        conf["new"]["perDay"] = new_per_day
        conf["rev"]["perDay"] = rev_per_day
        conf["rev"]["ease4"] = 1.35
        conf["desiredRetention"] = 0.87
        self.col.decks.update_config(conf)
        return {}

    def set_config(self, key: str, value: Any) -> dict[str, Any]:
        self.col.set_config(key, value)
        return {}

    def set_random_config(self, key: str, size: int) -> dict[str, Any]:
        """A setting of ``size`` random hex digits: makes a collection that hardly compresses."""
        self.col.set_config(key, os.urandom(size // 2).hex())
        return {}

    def check_database(self) -> dict[str, Any]:
        return {"integrity": self.col.db.scalar("pragma integrity_check")}

    # --- media ------------------------------------------------------------------------
    def add_media(self, name: str, size: int = 0, text: str = "", seed: int = 0) -> dict[str, Any]:
        """Store a file through the client's media API; returns the name it was stored under."""
        if text:
            data = text.encode()
        else:
            data = hashlib.sha256(f"{seed}".encode()).digest() * (size // 32 + 1)
            data = data[:size]
        return {"name": self.col.media.write_data(name, data)}

    def add_media_batch(self, count: int, size: int, prefix: str) -> dict[str, Any]:
        names = [self.add_media(f"{prefix}{i:04d}.bin", size, seed=i)["name"] for i in range(count)]
        return {"names": len(names)}

    def delete_media(self, names: list[str]) -> dict[str, Any]:
        self.col.media.trash_files(names)
        return {}

    def modify_media(self, name: str, text: str) -> dict[str, Any]:
        folder = Path(self.col.media.dir())
        (folder / name).write_text(text)
        # The client notices a change by the folder's and the file's mtimes (in seconds), so
        # move both clearly past the last scan, as an editor saving a while later would.
        later = time.time() + 5
        os.utime(folder / name, (later, later))
        os.utime(folder, (later, later))
        return {}

    def media_files(self) -> dict[str, Any]:
        folder = Path(self.col.media.dir())
        return {
            p.name: hashlib.sha1(p.read_bytes()).hexdigest()
            for p in folder.iterdir()
            if p.is_file()
        }

    def sync_media(self) -> dict[str, Any]:
        """Run a media sync to the end; report any error it ended with."""
        if self.long_transaction:
            self.col.save(trx=False)
        self.col.sync_media(self.auth())
        if not hasattr(self.col, "media_sync_status"):  # before 23.10 it blocks until done
            self.col.db.begin()
            return {}
        deadline = time.time() + 300
        while time.time() < deadline:
            status = self.col.media_sync_status()
            if not status.active:
                return {}
            time.sleep(0.05)
        raise TimeoutError("media sync did not finish")

    def sync_all(self) -> dict[str, Any]:
        """Collection sync followed by media sync, as the Sync button does."""
        result = self.sync()
        self.sync_media()
        return result

    def dump(self) -> dict[str, Any]:
        return {name: self.col.db.all(sql) for name, sql in TABLES.items()}

    def close(self) -> None:
        if self.long_transaction:
            self.col.save(trx=False)
        self.col.close()


def run(device: Device, step: dict[str, Any]) -> dict[str, Any]:
    op = step.pop("op")
    try:
        if op in ("full_upload", "full_download"):
            return device.full_sync(upload=op == "full_upload")
        if op == "sleep":
            time.sleep(step["seconds"])
            return {}
        return getattr(device, op)(**step)
    except Exception as exc:  # reported to the test, which asserts on it
        kind = getattr(exc, "kind", None)
        return {
            "error": type(exc).__name__,
            "kind": getattr(kind, "name", str(kind)) if kind is not None else None,
            "message": str(exc),
        }


def main() -> None:
    device = Device(Path(sys.argv[1]))
    try:
        results = [run(device, step) for step in json.loads(sys.argv[2])]
    finally:
        device.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
