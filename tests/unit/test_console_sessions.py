"""Console sessions (pure): they open for a key, expire and close; their tokens are unguessable."""

from __future__ import annotations

from corral.auth.policy import ApiKey, Role
from corral.console.sessions import Sessions

KEY = ApiKey("AKCRTEST", "secret", Role.ADMIN, (), "admin", 0.0)


def test_a_session_lives_until_its_time_or_its_logout() -> None:
    sessions = Sessions(ttl_s=100)
    session = sessions.open(KEY, now_s=1000)
    assert sessions.get(session.token, now_s=1099) == session
    assert sessions.get(session.token, now_s=1100) is None  # expired, and forgotten
    assert sessions.get(session.token, now_s=1000) is None
    other = sessions.open(KEY, now_s=1000)
    sessions.close(other.token)
    assert sessions.get(other.token, now_s=1000) is None
    assert sessions.get(None, now_s=1000) is None and sessions.get("made-up", 1000) is None


def test_each_session_has_its_own_unguessable_tokens() -> None:
    sessions = Sessions()
    one, two = sessions.open(KEY, 0), sessions.open(KEY, 0)
    assert len({one.token, two.token, one.csrf, two.csrf}) == 4
    assert len(one.token) >= 40 and len(one.csrf) >= 40
