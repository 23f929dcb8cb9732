"""Server CPU per row of a normal sync, in process: parsing ``applyChunk`` bodies, applying
them, and reading and encoding ``chunk`` answers, on a copy of the W1 collection.

    .venv/bin/python bench/rows.py [--notes 5000] [--cards 5000] [--reps 15] [--src DIR]

``--src`` imports ankisyncd from another checkout's ``src/`` (a before/after comparison runs
this script twice). Each figure is the median of ``--reps`` runs of the CPU time of the whole
step (``time.process_time``), also per row; applying runs in a transaction that is rolled back.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROWS_PER_CHUNK = 250
COLLECTION = Path.home() / ".cache/ankisyncd/bench/w1-50000.anki2"


def _median_cpu(reps: int, step: Callable[[], object]) -> float:
    times = []
    for _ in range(reps):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return statistics.median(times)


def _bodies(con: object, notes: int, cards: int, edit_last: bool) -> list[bytes]:
    """applyChunk bodies as the client sends them: cards, then notes, 250 rows each, with
    every note's first (or last) field edited and every card rescheduled."""
    card_rows = [
        [*r[:8], r[8] + 1, *r[9:]]
        for r in con.execute(  # type: ignore[attr-defined]
            "select id, nid, did, ord, mod + 1, usn, type, queue, due, ivl, factor, reps,"
            " lapses, left, odue, odid, flags, data from cards order by id limit ?",
            (cards,),
        )
    ]
    note_rows = [
        [
            r[0],
            r[1],
            r[2],
            r[3] + 1,
            -1,
            r[4],
            r[5] + " edited" if edit_last else "edited " + r[5],
            "",
            "",
            0,
            "",
        ]
        for r in con.execute(  # type: ignore[attr-defined]
            "select id, guid, mid, mod, tags, flds from notes order by id limit ?", (notes,)
        )
    ]
    rows = [("cards", r) for r in card_rows] + [("notes", r) for r in note_rows]
    bodies = []
    for start in range(0, len(rows), ROWS_PER_CHUNK):
        part = rows[start : start + ROWS_PER_CHUNK]
        chunk: dict[str, object] = {"done": start + ROWS_PER_CHUNK >= len(rows)}
        for table in ("revlog", "cards", "notes"):
            chunk[table] = [r for t, r in part if t == table]
        bodies.append(json.dumps({"chunk": chunk}, separators=(",", ":")).encode())
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=5000)
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--src", type=Path, help="a checkout whose src/ is imported")
    parser.add_argument("--edit-last", action="store_true", help="edit notes' last field")
    parser.add_argument("--steps", default="parse,apply,send", help="which steps to run")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, str(args.src.resolve() / "src"))
    from ankisyncd.protocol.normal import parse_apply_chunk
    from ankisyncd.storage.sqlite import connect
    from ankisyncd.sync.chunks import apply_chunk, next_chunk
    from ankisyncd.sync.session import SyncSession

    print(f"ankisyncd from {Path(sys.modules['ankisyncd'].__file__ or '').parent}")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        path = Path(tmp) / "collection.anki2"
        shutil.copy(COLLECTION, path)
        con = connect(path)
        (usn,) = con.execute("select usn from col").fetchone()
        bodies = _bodies(con, args.notes, args.cards, args.edit_last)
        rows = args.notes + args.cards

        def parse() -> None:
            for body in bodies:
                parse_apply_chunk(body)

        chunks = [parse_apply_chunk(b) for b in bodies]

        def apply() -> None:
            session = SyncSession.begin(con, "bench", usn, False)
            for chunk in chunks:
                apply_chunk(session, chunk)
            session.rollback()

        # What a client that last synced before these rows changed is sent back (usn - 0).
        con.execute(
            "update notes set usn = ? where id in (select id from notes limit ?)", (usn, args.notes)
        )
        con.execute(
            "update cards set usn = ? where id in (select id from cards limit ?)", (usn, args.cards)
        )

        def send() -> None:
            session = SyncSession.begin(con, "bench", usn, False)
            while True:
                chunk = next_chunk(session)
                chunk.to_wire()
                if chunk.done:
                    break
            session.rollback()

        steps = {"parse": parse, "apply": apply, "send": send}
        for name in args.steps.split(","):
            step = steps[name]
            step()  # warm caches
            cpu = _median_cpu(args.reps, step)
            print(f"{name:6} {cpu * 1000:8.1f} ms  {cpu / rows * 1e6:6.2f} us/row")
        con.close()


if __name__ == "__main__":
    main()
