"""``corral.telemetry.logwriter``: frames and rows (the process itself runs in integration)."""

from __future__ import annotations

import pickle

from corral.telemetry import logs, logwriter
from corral.telemetry.logwriter import Priority, idle_next


def test_a_frame_is_its_length_then_the_pickle() -> None:
    frame = logwriter.encode(("sync", 7))
    size = int.from_bytes(frame[: logwriter.HEADER_BYTES], "big")
    assert size == len(frame) - logwriter.HEADER_BYTES
    assert pickle.loads(frame[logwriter.HEADER_BYTES :]) == ("sync", 7)


def test_rows_render_platform_records_and_keep_plain_lines() -> None:
    versions: dict[str, str] = {}
    rows = logwriter.to_rows(
        [
            (1.5, "/aws/lambda/f", "2026/11/28/[3]abc", "r1", "", "hello"),
            (2.0, "/aws/lambda/f", "2026/11/28/[3]abc", "r1", "text.end", ("r1",)),
            (2.0, "/aws/lambda/capacity-provider/p", "instances", "", "", "{}"),
        ],
        versions,
    )
    assert rows == [
        (1500, "/aws/lambda/f", "2026/11/28/[3]abc", "3", "r1", "hello"),
        (2000, "/aws/lambda/f", "2026/11/28/[3]abc", "3", "r1", "END RequestId: r1"),
        (2000, "/aws/lambda/capacity-provider/p", "instances", "", "", "{}"),
    ]
    assert versions == {"2026/11/28/[3]abc": "3", "instances": ""}


def test_a_record_that_cannot_be_rendered_is_stored_as_a_note_not_lost() -> None:
    rows = logwriter.to_rows(
        [
            (1.0, "g", "s", "r", "platform.unknown", ("r",)),
            (1.0, "g", "s", "r", "text.end", ()),  # wrong arguments
        ],
        {},
    )
    assert [row[5].startswith("[corral: cannot render ") for row in rows] == [True, True]


def test_the_writer_runs_idle_while_it_keeps_up_and_normal_while_it_lags() -> None:
    # Hysteresis: idle until records are 2 s late, normal until they are 0.5 s late again.
    assert idle_next(True, 0.1) and idle_next(True, 1.9)
    assert not idle_next(True, 2.0)
    assert not idle_next(False, 1.0) and not idle_next(False, 0.6)
    assert idle_next(False, 0.5)
    fixed = Priority(adaptive=False)
    fixed.after(10.0)
    assert not fixed.idle and fixed.switches == 0


def test_a_block_of_output_becomes_one_row_per_line_filtered_and_attributed() -> None:
    stream = "2026/11/28/[3]abc"
    own = b'{"level": "INFO", "requestId": "r9", "message": "runtime line"}'
    block = b"\n".join([b"plain", b'{"level": "DEBUG", "message": "hidden"}', own, b"\xff"])
    rows = logwriter.to_rows(
        [
            (1.0, "g", stream, "r1", logs.LINES, (block, 2)),  # INFO and above
            (2.0, "g", stream, "", logs.LINES, (own, 0)),  # no known request
        ],
        {},
    )
    assert [(row[4], row[5]) for row in rows] == [
        ("r1", "plain"),
        ("r1", own.decode()),
        ("r1", "\ufffd"),
        ("r9", own.decode()),  # the runtime's JSON record names its request
    ]


def test_a_block_that_cannot_be_read_is_stored_as_a_note_not_lost() -> None:
    rows = logwriter.to_rows([(1.0, "g", "s", "r", logs.LINES, ("not bytes", 0))], {})
    assert rows[0][5].startswith("[corral: cannot read a block of output")
