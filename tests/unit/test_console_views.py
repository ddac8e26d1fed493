"""The console's request story, told from log records and the request journal (pure)."""

from __future__ import annotations

import json

from corral.console.views import _rank, request_story
from corral.telemetry.journal import JournalEntry, RequestJournal
from corral.telemetry.logdb import StoredEvent

STREAM = "2026/12/05/[3]abcdef0123"
GROUP = "/aws/lambda/orders"


def event(ms: int, message: str, stream: str = STREAM) -> StoredEvent:
    return StoredEvent(ms, ms, GROUP, stream, "req-1", message)


def json_record(kind: str, record: dict[str, object]) -> str:
    return json.dumps({"time": "t", "type": kind, "record": record})


def nobody(environment_id: str) -> None:
    return None


def test_an_old_request_is_told_from_its_text_records_alone() -> None:
    story = request_story(
        [
            event(1000, "START RequestId: req-1 Version: 3"),
            event(1001, "hello"),
            event(
                1005,
                "REPORT RequestId: req-1\tDuration: 4.50 ms\tBilled Duration: 5 ms\t"
                "Memory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 120.25 ms",
            ),
        ],
        None,
        nobody,
    )
    assert (story["function"], story["version"], story["environment_id"]) == (
        "orders",
        "3",
        "abcdef0123",
    )
    assert story["environment_state"] == "ended" and story["instance_id"] == ""
    assert story["outcome"] == "success"
    assert story["report"] == {
        "status": "success",
        "duration_ms": 4.5,
        "init_duration_ms": 120.25,
        "max_memory_mb": 40,
    }
    steps = [(name, at, took) for name, at, took in story["timeline"]]
    assert steps == [
        ("init (cold start)", 1000 - 120.25, 120.25),
        ("dispatched to a worker", 1000, None),
        ("handler", 1000, 4.5),
        ("answered", 1005, None),
    ]


def test_a_json_report_gives_the_error_type_as_the_outcome() -> None:
    story = request_story(
        [
            event(2000, json_record("platform.start", {"requestId": "req-1"})),
            event(
                2010,
                json_record(
                    "platform.report",
                    {
                        "requestId": "req-1",
                        "status": "error",
                        "errorType": "ValueError",
                        "metrics": {"durationMs": 9.0, "maxMemoryUsedMB": 50},
                    },
                ),
            ),
            event(2011, "{not json"),
        ],
        None,
        nobody,
    )
    assert story["outcome"] == "error: ValueError"
    assert story["report"]["duration_ms"] == 9.0 and story["report"]["max_memory_mb"] == 50


def test_the_journal_adds_when_it_was_received_and_how_long_it_waited() -> None:
    entry = JournalEntry(
        "req-1",
        "orders",
        "3",
        received_s=10.0,
        waited_s=0.25,
        dispatched_s=10.25,
        answered_s=10.3,
        environment_id="abcdef0123",
        instance_id="i-1",
        outcome="success",
        duration_ms=40.0,
        init_duration_ms=200.0,
    )
    story = request_story([], entry, nobody)
    assert story["instance_id"] == "i-1" and story["function"] == "orders"
    names = [name for name, _, _ in story["timeline"]]
    assert names[0] == "received" and "waited (cold start)" in names
    assert "of which init" in names and names[-1] == "answered"


def test_a_throttled_request_never_ran() -> None:
    entry = JournalEntry("req-2", "orders", "3", 10.0, answered_s=10.001)
    entry.outcome = "throttled: concurrency"
    story = request_story([], entry, nobody)
    assert story["environment_id"] == "" and story["outcome"] == "throttled: concurrency"
    assert [name for name, _, _ in story["timeline"]] == ["received", "throttled: concurrency"]


def test_the_journal_keeps_the_last_requests_only() -> None:
    journal = RequestJournal(capacity=2)
    for request_id in ("a", "b", "c"):
        journal.start(request_id, "f", "1")
    assert len(journal) == 2 and journal.get("a") is None and journal.get("c") is not None


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (_rank(values, 0.5), _rank(values, 0.99), _rank([7.0], 0.99)) == (50.0, 99.0, 7.0)
