"""What the fuzz suite tried, by kind of answer (read by the terminal summary)."""

from __future__ import annotations

from collections import Counter

SENT: Counter[str] = Counter()  # operation (or raw test) -> requests sent
ANSWERS: Counter[str] = Counter()  # "2xx", "4xx ErrorName", ...


def summary() -> str:
    total = sum(SENT.values())
    top = ", ".join(f"{name} {count}" for name, count in ANSWERS.most_common(8))
    return f"fuzz: {total} inputs tried on {len(SENT)} operations and raw cases; answers: {top}"
