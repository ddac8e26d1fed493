"""Console sessions: who is logged in, for how long, and their CSRF token. Pure, in memory.

A session is made by a login with a Corral key (its access key id and secret, checked against
the key ring); the browser holds only a random token, in an HttpOnly, SameSite=Strict cookie
scoped to ``/console``. Each session has its own CSRF token, which every state-changing request
must send back (a form field or the ``X-CSRF-Token`` header). Sessions end at logout, when
their key is deleted (checked at each request), or ``SESSION_TTL_S`` after login; a restarted
server forgets them all.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from corral.auth.policy import ApiKey

__all__ = ["COOKIE", "SESSION_TTL_S", "Session", "Sessions"]

COOKIE = "corral_session"
# Eight hours: a working day, then log in again.
SESSION_TTL_S = 8 * 3600.0
# Bounded: old sessions go first when a flood of logins would hold more.
_MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    token: str
    key: ApiKey
    csrf: str
    expires_s: float


class Sessions:
    """The console's logged-in sessions."""

    def __init__(self, ttl_s: float = SESSION_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._by_token: dict[str, Session] = {}

    def open(self, key: ApiKey, now_s: float) -> Session:
        if len(self._by_token) >= _MAX_SESSIONS:
            oldest = min(self._by_token.values(), key=lambda s: s.expires_s)
            del self._by_token[oldest.token]
        session = Session(
            token=secrets.token_urlsafe(32),
            key=key,
            csrf=secrets.token_urlsafe(32),
            expires_s=now_s + self._ttl_s,
        )
        self._by_token[session.token] = session
        return session

    def get(self, token: str | None, now_s: float) -> Session | None:
        """The live session of ``token`` (None: no such session, or it expired)."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        if session.expires_s <= now_s:
            del self._by_token[token]
            return None
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)
