"""``corral.telemetry.logs``: stream names, lazy records, REPORT lines, recent logs."""

from __future__ import annotations

import json

from corral.telemetry import logs

# 2024-02-29T23:59:58.250Z
LEAP_DAY_S = 1_709_251_198.25


def test_a_stream_name_is_the_utc_day_then_the_version_and_environment_id() -> None:
    assert logs.stream_name("3", "env-1", LEAP_DAY_S) == "2024/02/29/[3]env-1"
    assert logs.stream_name("$LATEST", "abc", 0.0) == "1970/01/01/[$LATEST]abc"


def test_a_lazy_record_renders_on_first_read_and_only_once() -> None:
    calls: list[int] = []

    def render() -> str:
        calls.append(1)
        return "REPORT RequestId: r1"

    record = logs.LogRecord(1.0, "/aws/lambda/f", "stream", "r1", render=render)
    assert calls == []
    assert record.message == "REPORT RequestId: r1"
    assert record.message == "REPORT RequestId: r1"
    assert "REPORT RequestId: r1" in repr(record)
    assert len(calls) == 1


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
