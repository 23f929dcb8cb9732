"""The mapping of server-side storage faults (disk full, I/O errors…) to StorageFault."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from ankisyncd.errors import BadRequest, LoginThrottled, ServerBusy, StorageFault, storage_fault
from ankisyncd.http.errors import error_response


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT])
def test_os_errors_of_the_file_system_are_storage_faults(code: int) -> None:
    fault = storage_fault(OSError(code, "boom", "/data/alice/x"))
    assert isinstance(fault, StorageFault) and fault.status == 503
    assert "/data/alice/x" in str(fault)


def test_full_and_unopenable_databases_are_storage_faults(tmp_path: object) -> None:
    con = sqlite3.connect(":memory:")
    con.execute("create table t (x)")
    con.execute("pragma max_page_count = 2")
    with pytest.raises(sqlite3.Error) as full:
        con.execute("insert into t select zeroblob(100000)")
    assert "database or disk is full" in str(storage_fault(full.value))
    with pytest.raises(sqlite3.Error) as cannot_open:
        sqlite3.connect("/nonexistent/folder/x.db")
    assert storage_fault(cannot_open.value) is not None


def test_a_fault_under_a_client_error_is_found_through_the_chain() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise BadRequest("bad zip") from exc
    except BadRequest as wrapped:
        assert storage_fault(wrapped) is not None


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOENT, "missing"),
        OSError(errno.EINVAL, "bad seek"),
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        sqlite3.OperationalError("no such table: t"),
        BadRequest("invalid json"),
        ValueError("x"),
    ],
)
def test_other_errors_are_not_storage_faults(exc: Exception) -> None:
    assert storage_fault(exc) is None


@pytest.mark.parametrize("exc", [LoginThrottled("wait", 42), ServerBusy("full", 42)])
def test_retry_later_answers_503_with_retry_after(exc: Exception) -> None:
    response = error_response(exc, "sync/meta")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "42"
