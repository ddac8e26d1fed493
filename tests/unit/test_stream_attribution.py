"""Lines of a shared Node.js process are filed by the ``requestId`` each carries."""

from __future__ import annotations

from corral.agent.stream import _by_request_id


def test_runs_of_lines_are_grouped_by_their_request_id() -> None:
    block = b"\n".join(
        [
            b'{"timestamp":"t","level":"INFO","requestId":"a-1","message":"one"}',
            b'{"timestamp":"t","level":"INFO","requestId":"a-1","message":"two"}',
            b'{"timestamp":"t","level":"WARN","requestId":"b-2","message":"three"}',
            b"raw output",
            b'{"timestamp":"t","level":"INFO","requestId":"-","message":"init"}',
            b'{"timestamp":"t","level":"INFO","requestId":"a-1","message":"four"}',
        ]
    )
    groups = _by_request_id(block)
    assert [(rid, lines.count(b"\n") + 1) for rid, lines in groups] == [
        (b"a-1", 2),
        (b"b-2", 1),
        (b"", 2),
        (b"a-1", 1),
    ]
    assert b"".join(lines for _, lines in groups).count(b"message") == 5


def test_a_request_id_far_into_a_line_or_unterminated_is_not_one() -> None:
    late = b'{"message":"' + b"x" * 200 + b'","requestId":"zz"}'
    assert _by_request_id(late) == [(b"", late)]
    assert _by_request_id(b'{"requestId":"') == [(b"", b'{"requestId":"')]
