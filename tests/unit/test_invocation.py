"""``corral.runtime.invocation.new_request_id``: Lambda-style request ids."""

from __future__ import annotations

import time
import uuid

import pytest

from corral.runtime import invocation


def test_a_request_id_is_the_text_of_an_rfc_9562_version_7_uuid() -> None:
    for _ in range(1000):
        text = invocation.new_request_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_a_request_id_starts_with_the_time_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    text = invocation.new_request_id()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(text).int >> 80 <= after


def test_request_ids_made_in_different_milliseconds_sort_by_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    for millis in (1_764_000_000_000, 1_764_000_000_001, 1_764_000_003_600):
        monkeypatch.setattr(time, "time_ns", lambda m=millis: m * 1_000_000)
        made.extend(invocation.new_request_id() for _ in range(100))
    assert made[::100] == sorted(made[::100])
    assert max(made[:100]) < min(made[100:200]) and max(made[100:200]) < min(made[200:])


def test_request_ids_do_not_repeat() -> None:
    draws = [invocation.new_request_id() for _ in range(50_000)]
    assert len(set(draws)) == len(draws)
