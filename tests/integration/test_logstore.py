"""The log store on a real SQLite file and a real writer process: filters, paging,
durability, retention, indexes, and a writer that dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.core import errors
from corral.telemetry import logwriter
from corral.telemetry.logdb import LogDatabase, LogQuery, Retention, Row
from corral.telemetry.logs import LINES, LogRecord
from corral.telemetry.logstore import DiscardedLogs, LogStore

STREAM_1 = "2026/11/28/[1]aaaa"
STREAM_2 = "2026/11/28/[2]bbbb"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[LogDatabase]:
    database = LogDatabase(tmp_path / "logs.db")
    yield database
    database.close()


def row(timestamp_s: float, group: str, stream: str, request_id: str, message: str) -> Row:
    version = stream.partition("[")[2].partition("]")[0]
    return (int(timestamp_s * 1000), group, stream, version, request_id, message)


def messages(db: LogDatabase, query: LogQuery) -> list[str]:
    return [event.message for event in db.query(query)]


def test_records_are_filtered_by_group_request_stream_version_and_time(db: LogDatabase) -> None:
    db.insert(
        [
            row(100.0, "/aws/lambda/f", STREAM_1, "r1", "one"),
            row(101.0, "/aws/lambda/f", STREAM_1, "r2", "two"),
            row(102.0, "/aws/lambda/g", STREAM_1, "r1", "elsewhere"),
            row(103.0, "/aws/lambda/f", STREAM_2, "r1", "three"),
            row(104.0, "/aws/lambda/f", STREAM_2, "", "init"),
        ]
    )
    f = "/aws/lambda/f"
    assert messages(db, LogQuery(f)) == ["one", "two", "three", "init"]
    assert messages(db, LogQuery(f, request_id="r1")) == ["one", "three"]
    assert messages(db, LogQuery(f, stream=STREAM_2)) == ["three", "init"]
    assert messages(db, LogQuery(f, version="1")) == ["one", "two"]
    assert messages(db, LogQuery(f, since_ms=101_000, until_ms=103_000)) == ["two", "three"]
    assert messages(db, LogQuery("/aws/lambda/missing")) == []
    first = db.query(LogQuery(f, limit=2))
    assert [e.message for e in first] == ["one", "two"]
    rest = db.query(LogQuery(f, after_id=first[-1].id))
    assert [e.message for e in rest] == ["three", "init"]
    assert first[0].timestamp_ms == 100_000 and first[0].log_stream == STREAM_1


def test_records_older_than_the_retention_are_deleted(tmp_path: Path) -> None:
    db = LogDatabase(tmp_path / "logs.db", Retention(max_age_s=3600))
    try:
        now = time.time()
        db.insert([row(now - 7200, "g", "s", "", "old"), row(now - 60, "g", "s", "", "recent")])
        assert db.enforce_retention(now) == 1
        assert messages(db, LogQuery("g")) == ["recent"]
        assert db.enforce_retention(now + 7200) == 1  # everything is old now
        assert messages(db, LogQuery("g")) == []
    finally:
        db.close()


def test_past_the_size_limit_the_oldest_records_go_first(tmp_path: Path) -> None:
    db = LogDatabase(tmp_path / "logs.db", Retention(max_bytes=256 * 1024))
    try:
        now = time.time()
        db.insert([row(now, "g", "s", "", f"{i:05d} " + "x" * 200) for i in range(4000)])
        deleted = db.enforce_retention(now)
        kept = messages(db, LogQuery("g", limit=10_000))
        assert deleted > 0 and len(kept) == 4000 - deleted
        assert kept[-1].startswith("03999 ")  # the newest stay
        assert kept[0] > "00000"  # the oldest went
        assert db.live_bytes() <= 256 * 1024
    finally:
        db.close()


def test_a_request_id_query_uses_its_index_over_100000_records(db: LogDatabase) -> None:
    now = time.time()
    db.insert(
        [
            row(now, "/aws/lambda/busy", STREAM_1, f"req-{i % 20_000}", f"line {i}")
            for i in range(100_000)
        ]
    )
    query = LogQuery("/aws/lambda/busy", request_id="req-1234")
    assert "logs_request" in db.explain(query)
    started = time.perf_counter()
    found = messages(db, query)
    elapsed = time.perf_counter() - started
    assert found == [f"line {i}" for i in (1234, 21234, 41234, 61234, 81234)]
    # Measured, not a target: an index lookup, whatever the table's size.
    print(f"request-id query over 100,000 records: {elapsed * 1000:.2f} ms")
    assert "logs_group_time" in db.explain(LogQuery("/aws/lambda/busy", since_ms=1))


# --- the store and its writer process ----------------------------------------------------------


def emit(store: LogStore, *rows: tuple[float, str, str, str, str]) -> None:
    for timestamp, group, stream, request_id, message in rows:
        store.emit(LogRecord(timestamp, group, stream, request_id, message))


@pytest.mark.asyncio
async def test_a_query_sees_every_record_emitted_before_it(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    await store.start()
    try:
        emit(store, (100.0, "g", STREAM_1, "r1", "plain"))
        store.emit(
            LogRecord(
                101.0, "g", STREAM_1, "r1", kind="text.report", args=("r1", 2.5, 128, 9, None)
            )
        )
        found = await store.query(LogQuery("g"))
        assert [e.message for e in found] == [
            "plain",
            "REPORT RequestId: r1\tDuration: 2.50 ms\tBilled Duration: 3 ms\t"
            "Memory Size: 128 MB\tMax Memory Used: 9 MB",
        ]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_the_writer_stores_records_without_being_asked(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    await store.start()
    try:
        emit(store, (time.time(), "g", "s", "r", "hello"))
        deadline = time.monotonic() + 5
        seen = 0
        while seen == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            with sqlite3.connect(tmp_path / "logs.db") as raw:
                seen = raw.execute("SELECT count(*) FROM logs").fetchone()[0]
        assert seen == 1
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_records_emitted_just_before_close_survive_a_restart(tmp_path: Path) -> None:
    first = LogStore(tmp_path / "logs.db")
    await first.start()
    emit(first, (time.time(), "g", "s", "r", "kept"))
    await first.close()  # sends what is pending; the writer stores it before exiting
    second = LogStore(tmp_path / "logs.db")
    await second.start()
    try:
        assert [e.message for e in await second.query(LogQuery("g"))] == ["kept"]
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_a_killed_writer_is_started_again_and_later_records_are_kept(
    tmp_path: Path,
) -> None:
    store = LogStore(tmp_path / "logs.db")
    await store.start()
    try:
        emit(store, (time.time(), "g", "s", "r", "before"))
        await store.sync()
        assert store._process is not None
        os.kill(store._process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            process = store._process
            if process is not None and process.returncode is None and store._tasks:
                try:
                    await store.sync()
                    break
                except Exception:
                    continue
        emit(store, (time.time(), "g", "s", "r", "after"))
        assert [e.message for e in await store.query(LogQuery("g"))] == ["before", "after"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_records_the_writer_could_not_take_are_reported_in_their_stream(
    tmp_path: Path,
) -> None:
    store = LogStore(tmp_path / "logs.db")
    await store.start()
    try:
        assert store._process is not None
        os.kill(store._process.pid, signal.SIGKILL)
        await store._process.wait()
        block = b"first\nsecond\nthird"
        store.emit(LogRecord(time.time(), "g", STREAM_1, "r1", kind=LINES, args=(block, 0)))
        store._send_pending()  # no writer: lost, and counted
        assert (store.dropped, store.dropped_bytes) == (3, len(block))
        deadline = time.monotonic() + 10
        while True:  # the writer is started again
            with contextlib.suppress(errors.CorralError):
                await store.sync()
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        emit(store, (time.time(), "g", STREAM_1, "r2", "after the gap"))
        events = await store.query(LogQuery("g"))
        notice = json.loads(events[0].message)
        assert notice["type"] == "platform.logsDropped"
        assert notice["record"]["droppedRecords"] == 3
        assert notice["record"]["droppedBytes"] == len(block)
        assert events[0].log_stream == STREAM_1
        assert [e.message for e in events[1:]] == ["after the gap"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_ctrl_c_to_the_process_group_does_not_stop_the_writer(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    await store.start()
    try:
        assert store._process is not None
        os.kill(store._process.pid, signal.SIGINT)
        emit(store, (time.time(), "g", "s", "r", "still here"))
        assert [e.message for e in await store.query(LogQuery("g"))] == ["still here"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_discarded_logs_keep_nothing(tmp_path: Path) -> None:
    store = DiscardedLogs()
    await store.start()
    emit(store, (time.time(), "g", "s", "r", "gone"))
    assert await store.query(LogQuery("g")) == []
    await store.close()


# --- failure paths ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_writer_that_cannot_start_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("corral.telemetry.logstore.sys.executable", "/bin/false")
    store = LogStore(tmp_path / "logs.db")
    with pytest.raises(errors.CorralError, match="the log writer did not start"):
        await store.start()
    await store.close()


@pytest.mark.asyncio
async def test_without_a_writer_records_are_counted_as_dropped_and_queries_still_read(
    tmp_path: Path,
) -> None:
    store = LogStore(tmp_path / "logs.db")
    await store.start()
    try:
        emit(store, (time.time(), "g", "s", "r", "stored"))
        await store.sync()
        assert store._process is not None
        os.kill(store._process.pid, signal.SIGKILL)
        await store._process.wait()
        with pytest.raises(errors.CorralError, match="not running"):
            await store.sync()
        emit(store, (time.time(), "g", "s", "r", "lost"))
        # The query warns and reads what was stored.
        assert [e.message for e in await store.query(LogQuery("g"))] == ["stored"]
        assert store.dropped == 1
    finally:
        await store.close()


def test_the_writer_loop_stores_answers_and_applies_retention(tmp_path: Path) -> None:
    db = LogDatabase(tmp_path / "logs.db", Retention(max_age_s=60))
    read_end, write_end = os.pipe()
    now = time.time()
    frames = [
        logwriter.encode(("rows", [(now - 3600, "g", "s", "r", "", "old")])),
        logwriter.encode(("rows", [(now, "g", "s", "r", "text.end", ("r",))])),
        logwriter.encode(("sync", 5)),
    ]
    os.write(write_end, b"".join(frames))
    os.close(write_end)
    answers: list[str] = []
    ticks = iter([0.0, 0.0, 61.0, 61.0, 61.0, 200.0, 200.0, 200.0])
    try:
        with os.fdopen(read_end, "rb") as stdin:
            logwriter.serve(db, stdin, answers.append, clock=lambda: next(ticks, 400.0))
        assert answers == ["5"]
        assert messages(db, LogQuery("g")) == ["END RequestId: r"]  # "old" went with retention
    finally:
        db.close()


def test_a_failed_insert_is_reported_and_the_writer_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = LogDatabase(tmp_path / "logs.db")
    read_end, write_end = os.pipe()
    os.write(write_end, logwriter.encode(("rows", [(1.0, "g", "s", "r", "", "x")])))
    os.write(write_end, logwriter.encode(("sync", 1)))
    os.close(write_end)
    db.close()  # inserting now fails
    answers: list[str] = []
    with os.fdopen(read_end, "rb") as stdin:
        logwriter.serve(db, stdin, answers.append)
    assert answers == ["1"]
    assert "1 records lost" in capsys.readouterr().err


def test_the_writer_command_explains_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert logwriter.main(["only-one"]) == 2
    assert "usage: python -m corral.telemetry.logwriter" in capsys.readouterr().err
