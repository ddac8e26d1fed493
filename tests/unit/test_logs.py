"""``corral.telemetry.logs``: stream names, lazy records, REPORT lines, recent logs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.telemetry import logs

# 2024-02-29T23:59:58.250Z
LEAP_DAY_S = 1_709_251_198.25


def test_a_stream_name_is_the_utc_day_then_the_version_and_environment_id() -> None:
    assert logs.stream_name("3", "env-1", LEAP_DAY_S) == "2024/02/29/[3]env-1"
    assert logs.stream_name("$LATEST", "abc", 0.0) == "1970/01/01/[$LATEST]abc"


def test_a_platform_record_renders_from_its_template_on_first_read_and_only_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, ...]] = []

    def template(*args: str) -> str:
        calls.append(args)
        return logs.text_end(*args)

    monkeypatch.setitem(logs.TEMPLATES, "text.end", template)
    record = logs.LogRecord(1.0, "/aws/lambda/f", "stream", "r1", kind="text.end", args=("r1",))
    assert calls == []
    assert record.message == "END RequestId: r1"
    assert record.message == "END RequestId: r1"
    assert "END RequestId: r1" in repr(record)
    assert calls == [("r1",)]


def test_every_template_renders_by_name() -> None:
    assert logs.render("text.start", ("r1", "3")) == "START RequestId: r1 Version: 3"
    assert logs.render("text.end", ("r1",)) == "END RequestId: r1"
    assert logs.render("text.report", ("r1", 1.0, 128, 10, None)).startswith("REPORT RequestId")
    assert json.loads(logs.render("platform.start", ("r1", "1", "arn:f", 0.0)))["type"] == (
        "platform.start"
    )
    report = json.loads(logs.render("platform.report", ("r1", "success", 2.5, 0.0, 64)))
    assert report["record"]["metrics"] == {"durationMs": 2.5, "maxMemoryUsedMB": 64}
    with pytest.raises(KeyError):
        logs.render("platform.unknown", ())


def test_a_plain_record_returns_its_message() -> None:
    assert logs.LogRecord(1.0, "g", "s", "", message="hello").message == "hello"


def test_the_text_report_rounds_billed_duration_up_and_omits_init_when_warm() -> None:
    line = logs.text_report("r1", 12.3456, 128, 40, None)
    assert line == (
        "REPORT RequestId: r1\tDuration: 12.35 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB"
    )


def test_the_text_report_of_a_cold_start_ends_with_the_init_duration() -> None:
    line = logs.text_report("r1", 0.2, 256, 50, 151.239)
    assert "\tBilled Duration: 1 ms\t" in line
    assert line.endswith("\tMax Memory Used: 50 MB\tInit Duration: 151.24 ms")


def test_a_platform_report_has_the_aws_json_shape() -> None:
    record = json.loads(
        logs.platform_report(
            "r1",
            "error",
            10.12345,
            LEAP_DAY_S,
            max_memory_used_mb=64,
            init_duration_ms=99.99999,
            error_type="Runtime.ExitError",
        )
    )
    assert record == {
        "time": "2024-02-29T23:59:58.250Z",
        "type": "platform.report",
        "record": {
            "requestId": "r1",
            "status": "error",
            "metrics": {"durationMs": 10.123, "maxMemoryUsedMB": 64, "initDurationMs": 100.0},
            "errorType": "Runtime.ExitError",
        },
    }


def test_a_minimal_platform_report_has_only_the_duration() -> None:
    record = json.loads(logs.platform_report("r1", "success", 1.0, 0.0))
    assert record["record"] == {
        "requestId": "r1",
        "status": "success",
        "metrics": {"durationMs": 1.0},
    }


def test_a_platform_start_names_the_request_version_and_function() -> None:
    record = json.loads(logs.platform_start("r1", "3", "arn:f", 0.0))
    assert record == {
        "time": "1970-01-01T00:00:00.000Z",
        "type": "platform.start",
        "record": {"requestId": "r1", "version": "3", "functionArn": "arn:f"},
    }


def test_json_functions_drop_application_lines_below_their_level() -> None:
    warn = logs.LevelFilter("JSON", "WARN", None)
    assert not warn.keeps("plain print")  # no level: INFO
    assert not warn.keeps('{"level": "INFO", "message": "m"}')
    assert warn.keeps('{"level": "WARNING", "message": "m"}')
    assert warn.keeps('{"level": "error", "message": "m"}')
    assert not warn.keeps('{"level": 7}')  # not a level: INFO
    assert not warn.keeps("{not json")
    default = logs.LevelFilter("JSON", None, None)
    assert default.keeps("plain print")
    assert not default.keeps('{"level": "DEBUG"}')
    trace = logs.LevelFilter("JSON", "TRACE", None)
    assert trace.keeps('{"level": "TRACE"}')


def test_text_functions_are_never_filtered_and_warn_hides_platform_records() -> None:
    text = logs.LevelFilter("Text", "FATAL", "WARN")
    assert text.keeps('{"level": "DEBUG"}') and text.platform
    assert not logs.LevelFilter("JSON", None, "WARN").platform
    assert logs.LevelFilter("JSON", None, "DEBUG").platform


_ids = st.text(alphabet="0123456789abcdef-", min_size=1, max_size=40)
_durations = st.floats(min_value=0, max_value=900_000, allow_nan=False, allow_infinity=False)


@given(
    request_id=_ids,
    version=st.one_of(st.just("$LATEST"), st.integers(1, 10**6).map(str)),
    epoch_s=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),
    duration_ms=_durations,
    memory_mb=st.one_of(st.none(), st.integers(1, 32_768)),
    init_ms=st.one_of(st.none(), _durations),
    error_type=st.one_of(st.none(), st.text(max_size=50)),
)
def test_hand_formatted_platform_records_are_the_json_they_claim(
    request_id: str,
    version: str,
    epoch_s: float,
    duration_ms: float,
    memory_mb: int | None,
    init_ms: float | None,
    error_type: str | None,
) -> None:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:f:{version}"
    start = json.loads(logs.platform_start(request_id, version, arn, epoch_s))
    assert start["record"] == {"requestId": request_id, "version": version, "functionArn": arn}
    assert start["time"].endswith("Z") and len(start["time"]) == 24
    status = "error" if error_type else "success"
    report = json.loads(
        logs.platform_report(
            request_id, status, duration_ms, epoch_s, memory_mb, init_ms, error_type
        )
    )
    assert report["type"] == "platform.report" and report["record"]["status"] == status
    metrics = report["record"]["metrics"]
    assert metrics["durationMs"] == round(duration_ms, 3)
    assert metrics.get("maxMemoryUsedMB") == memory_mb
    assert metrics.get("initDurationMs") == (None if init_ms is None else round(init_ms, 3))
    assert report["record"].get("errorType") == (error_type or None)
    assert start["time"] == report["time"]


def test_a_line_that_only_looks_like_json_counts_as_info() -> None:
    warn_and_up = logs.LevelFilter("JSON", "WARN", None)
    assert not warn_and_up.keeps('{"level": "INFO" oops')  # not JSON: INFO, below WARN
    assert not warn_and_up.keeps('["level"]')  # JSON, but not an object: INFO
    assert warn_and_up.keeps('{"level": "ERROR", "message": "x"}')
    assert logs.LevelFilter("JSON", "INFO", None).keeps('{"level": "INFO" oops')
