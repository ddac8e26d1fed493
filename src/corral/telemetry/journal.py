"""The request journal: what happened to each recent invocation, for the console's request
view (``/console/requests/{id}``). In memory, bounded: the last ``capacity`` requests.

One ``JournalEntry`` per invocation the router takes: when it was received, how long it
waited for a slot or a cold start, where it ran (environment and instance), when it was
dispatched and answered, and how it ended (``success``, ``error: <type>``, or ``throttled:
<cause>``). The logs keep a request's lines for days; the journal adds the moments the logs
do not have, for as long as it holds the request.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass

__all__ = ["JournalEntry", "RequestJournal"]


@dataclass(slots=True)
class JournalEntry:
    request_id: str
    function: str
    version: str
    received_s: float
    waited_s: float = 0.0
    dispatched_s: float | None = None
    answered_s: float | None = None
    environment_id: str = ""
    instance_id: str = ""
    outcome: str = "running"
    duration_ms: float | None = None
    init_duration_ms: float | None = None


class RequestJournal:
    """The last ``capacity`` requests, by request id."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._entries: collections.OrderedDict[str, JournalEntry] = collections.OrderedDict()
        self._capacity = capacity

    def start(self, request_id: str, function: str, version: str) -> JournalEntry:
        entry = JournalEntry(request_id, function, version, time.time())
        entries = self._entries
        entries[request_id] = entry
        if len(entries) > self._capacity:
            entries.popitem(last=False)
        return entry

    def get(self, request_id: str) -> JournalEntry | None:
        return self._entries.get(request_id)

    def __len__(self) -> int:
        return len(self._entries)
