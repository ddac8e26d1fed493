"""The log store on a real SQLite file: filters, paging, durability, retention, indexes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.telemetry.logs import LogRecord
from corral.telemetry.logstore import LogQuery, LogStore, Retention

STREAM_1 = "2026/11/28/[1]aaaa"
STREAM_2 = "2026/11/28/[2]bbbb"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    logs = LogStore(tmp_path / "logs.db")
    yield logs
    logs.close()


def emit(store: LogStore, *rows: tuple[float, str, str, str, str]) -> None:
    for timestamp, group, stream, request_id, message in rows:
        store.emit(LogRecord(timestamp, group, stream, request_id, message))


def messages(store: LogStore, query: LogQuery) -> list[str]:
    return [event.message for event in store.query(query)]


def test_records_are_filtered_by_group_request_stream_version_and_time(store: LogStore) -> None:
    emit(
        store,
        (100.0, "/aws/lambda/f", STREAM_1, "r1", "one"),
        (101.0, "/aws/lambda/f", STREAM_1, "r2", "two"),
        (102.0, "/aws/lambda/g", STREAM_1, "r1", "elsewhere"),
        (103.0, "/aws/lambda/f", STREAM_2, "r1", "three"),
        (104.0, "/aws/lambda/f", STREAM_2, "", "init"),
    )
    f = "/aws/lambda/f"
    assert messages(store, LogQuery(f)) == ["one", "two", "three", "init"]
    assert messages(store, LogQuery(f, request_id="r1")) == ["one", "three"]
    assert messages(store, LogQuery(f, stream=STREAM_2)) == ["three", "init"]
    assert messages(store, LogQuery(f, version="1")) == ["one", "two"]
    assert messages(store, LogQuery(f, since_ms=101_000, until_ms=103_000)) == ["two", "three"]
    assert messages(store, LogQuery("/aws/lambda/missing")) == []
    first = store.query(LogQuery(f, limit=2))
    assert [e.message for e in first] == ["one", "two"]
    rest = store.query(LogQuery(f, after_id=first[-1].id))
    assert [e.message for e in rest] == ["three", "init"]
    assert first[0].timestamp_ms == 100_000 and first[0].log_stream == STREAM_1


def test_lazily_rendered_platform_records_are_stored_rendered(store: LogStore) -> None:
    store.emit(LogRecord(1.0, "g", "s", "r", render=lambda: "REPORT RequestId: r"))
    assert messages(store, LogQuery("g")) == ["REPORT RequestId: r"]


def test_the_writer_thread_stores_records_without_being_asked(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    store.start()
    try:
        emit(store, (time.time(), "g", "s", "r", "hello"))
        deadline = time.monotonic() + 5
        seen = 0
        while seen == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
            with sqlite3.connect(tmp_path / "logs.db") as raw:
                seen = raw.execute("SELECT count(*) FROM logs").fetchone()[0]
        assert seen == 1
    finally:
        store.close()


def test_records_survive_a_restart(tmp_path: Path) -> None:
    first = LogStore(tmp_path / "logs.db")
    emit(first, (time.time(), "g", "s", "r", "kept"))
    first.close()  # writes what is pending
    second = LogStore(tmp_path / "logs.db")
    try:
        assert messages(second, LogQuery("g")) == ["kept"]
    finally:
        second.close()


def test_records_older_than_the_retention_are_deleted(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db", Retention(max_age_s=3600))
    try:
        now = time.time()
        emit(store, (now - 7200, "g", "s", "", "old"), (now - 60, "g", "s", "", "recent"))
        store.flush()
        assert store.enforce_retention(now) == 1
        assert messages(store, LogQuery("g")) == ["recent"]
    finally:
        store.close()


def test_past_the_size_limit_the_oldest_records_go_first(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db", Retention(max_bytes=256 * 1024))
    try:
        now = time.time()
        for i in range(4000):
            emit(store, (now, "g", "s", "", f"{i:05d} " + "x" * 200))
        store.flush()
        deleted = store.enforce_retention(now)
        kept = messages(store, LogQuery("g", limit=10_000))
        assert deleted > 0 and len(kept) == 4000 - deleted
        assert kept[-1].startswith("03999 ")  # the newest stay
        assert kept[0] > "00000"  # the oldest went
        assert store._live_bytes() <= 256 * 1024
    finally:
        store.close()


def test_a_request_id_query_uses_its_index_over_100000_records(store: LogStore) -> None:
    now = time.time()
    for i in range(100_000):
        emit(store, (now, "/aws/lambda/busy", STREAM_1, f"req-{i % 20_000}", f"line {i}"))
    store.flush()
    query = LogQuery("/aws/lambda/busy", request_id="req-1234")
    assert "logs_request" in store.explain(query)
    started = time.perf_counter()
    found = messages(store, query)
    elapsed = time.perf_counter() - started
    assert found == [f"line {i}" for i in (1234, 21234, 41234, 61234, 81234)]
    # Measured, not a target: an index lookup, whatever the table's size.
    print(f"request-id query over 100,000 records: {elapsed * 1000:.2f} ms")
    assert "logs_group_time" in store.explain(LogQuery("/aws/lambda/busy", since_ms=1))
