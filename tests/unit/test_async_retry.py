"""``corral.router.asyncq.retry_delay_s``: AWS's backoff for throttled async events."""

from __future__ import annotations

import random

from corral.router.asyncq import retry_delay_s


def test_retry_delays_grow_from_one_second_to_five_minutes() -> None:
    # AWS: "the interval growing exponentially from 1 second to at most 5 minutes".
    rng = random.Random(7)
    delays = [retry_delay_s(n, rng) for n in range(1, 14)]
    assert 0.75 <= delays[0] <= 1.0
    assert all(b > a * 1.2 for a, b in zip(delays[:8], delays[1:9], strict=True))
    assert all(225 <= d <= 300 for d in delays[-3:])


def test_a_delay_is_never_under_a_second() -> None:
    rng = random.Random(1)
    assert min(retry_delay_s(n, rng) for n in range(0, 50) for _ in range(20)) >= 1.0
