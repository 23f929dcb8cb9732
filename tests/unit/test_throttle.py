"""Leaky buckets of the login throttle."""

from __future__ import annotations

import pytest

from ankisyncd.users import throttle
from ankisyncd.users.throttle import Buckets, LoginThrottle


def test_a_full_bucket_waits_until_one_attempt_has_leaked_out() -> None:
    buckets = Buckets(limit=3, seconds=30)  # one attempt forgiven every 10 s
    for _ in range(3):
        assert buckets.wait("a", now=0) == 0
        buckets.add("a", 1, now=0)
    assert buckets.wait("a", now=0) == 10
    assert abs(buckets.wait("a", now=4) - 6) < 1e-9
    assert buckets.wait("a", now=10) == 0
    assert buckets.wait("b", now=0) == 0  # other keys are unaffected


def test_refunds_never_go_below_empty() -> None:
    buckets = Buckets(limit=2, seconds=10)
    buckets.add("a", -5, now=0)
    buckets.add("a", 1, now=0)
    buckets.add("a", 1, now=0)
    assert buckets.wait("a", now=0) > 0


def test_tracked_keys_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_TRACKED", 10)
    buckets = Buckets(limit=1, seconds=60)
    for i in range(100):
        buckets.add(f"k{i}", 1, now=0)
    assert len(buckets._buckets) == 10
    assert buckets.wait("k99", now=0) > 0


def test_begin_charges_both_kinds_and_a_success_refunds_them() -> None:
    limiter = LoginThrottle(per_address=2, per_user=0, seconds=60)
    assert limiter.begin("1.2.3.4", "alice") == 0
    limiter.succeeded("1.2.3.4", "alice")
    assert limiter.begin("1.2.3.4", "bob") == 0
    assert limiter.begin("1.2.3.4", "carol") == 0
    assert limiter.begin("1.2.3.4", "dave") == 30
    assert limiter.begin("5.6.7.8", "dave") == 0
