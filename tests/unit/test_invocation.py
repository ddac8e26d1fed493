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


def test_the_tail_keeps_the_last_4_kb_of_whole_lines_and_no_more() -> None:
    tail = invocation.LogTail()
    for n in range(10_000):
        tail.add(f"line {n:05d} ".encode() + b"." * 90)
    lines = tail.lines()
    size = sum(len(line) + 1 for line in lines)
    assert invocation.TAIL_BYTES <= size < invocation.TAIL_BYTES + 120
    assert lines[-1].startswith(b"line 09999")
    assert all(a < b for a, b in zip(lines, lines[1:], strict=False))  # in order, whole


def test_the_tail_of_a_huge_block_looks_only_at_its_end_and_applies_the_filter() -> None:
    tail = invocation.LogTail()
    block = b"\n".join(f"{n} {'keep' if n % 2 else 'drop'}".encode() for n in range(200_000))
    tail.add_block(block, lambda text: text.endswith("keep"))
    lines = tail.lines()
    assert lines[-1] == b"199999 keep"
    assert all(line.endswith(b"keep") for line in lines)
    assert sum(len(line) + 1 for line in lines) < invocation.TAIL_BYTES + 20


def test_a_single_line_longer_than_the_tail_is_kept_whole() -> None:
    tail = invocation.LogTail()
    tail.add(b"a" * 10_000)
    assert tail.lines() == (b"a" * 10_000,)
    tail.add(b"b")
    assert tail.lines() == (b"a" * 10_000, b"b")
