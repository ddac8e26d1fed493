"""``corral.runtime.invocation.new_request_id``: Lambda-style request ids."""

from __future__ import annotations

import uuid

from corral.runtime import invocation


def test_a_request_id_is_the_text_of_an_rfc_4122_version_4_uuid() -> None:
    for _ in range(1000):
        text = invocation.new_request_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_request_ids_do_not_repeat() -> None:
    draws = [invocation.new_request_id() for _ in range(50_000)]
    assert len(set(draws)) == len(draws)
