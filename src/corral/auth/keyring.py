"""The server's API keys: loaded at start, kept in memory, written through to SQLite, and
the admin key handed to local tools in an AWS shared-credentials file.
"""

from __future__ import annotations

import configparser
import io
import os
from collections.abc import Sequence
from pathlib import Path

from corral.auth.policy import ApiKey, Role, new_key
from corral.core import errors
from corral.store.keys import KeyTable

__all__ = ["PROFILE", "KeyRing", "write_credentials"]

PROFILE = "corral"


class KeyRing:
    """Every key, by id."""

    def __init__(self, table: KeyTable) -> None:
        self._table = table
        self._keys: dict[str, ApiKey] = {}
        for key_id, secret, role, patterns, name, created_s in table.list():
            self._keys[key_id] = ApiKey(key_id, secret, Role(role), patterns, name, created_s)

    def get(self, access_key_id: str) -> ApiKey | None:
        return self._keys.get(access_key_id)

    def list(self) -> list[ApiKey]:
        return list(self._keys.values())

    def create(self, role: Role, patterns: Sequence[str], name: str, now_s: float) -> ApiKey:
        """A new key, stored.

        Raises:
            errors.InvalidRequest: bad role patterns or name (``policy.new_key``).
            errors.Conflict: a key of that name exists.
        """
        if any(k.name == name for k in self._keys.values()):
            raise errors.Conflict(f"a key named {name!r} exists; pick another name")
        key = new_key(role, patterns, name, now_s)
        self._table.put(
            (key.access_key_id, key.secret, key.role.value, key.function_patterns, name, now_s)
        )
        self._keys[key.access_key_id] = key
        return key

    def delete(self, access_key_id: str) -> ApiKey:
        """Delete a key; its signatures stop working at once.

        Raises:
            errors.NotFound: no such key.
            errors.Conflict: it is the last admin key (nobody could manage keys after).
        """
        key = self._keys.get(access_key_id)
        if key is None:
            raise errors.NotFound(f"Corral has no key {access_key_id[:40]!r}")
        admins = [k for k in self._keys.values() if k.role is Role.ADMIN]
        if key.role is Role.ADMIN and len(admins) == 1:
            raise errors.Conflict(
                "this is the last admin key: create another admin key first, or nobody "
                "could manage this Corral any more"
            )
        self._table.delete(access_key_id)
        del self._keys[access_key_id]
        return key

    def admin(self, now_s: float) -> ApiKey:
        """The oldest admin key, created (named ``admin``) if there is none."""
        for key in self._keys.values():
            if key.role is Role.ADMIN:
                return key
        name = "admin" if all(k.name != "admin" for k in self._keys.values()) else "corral-admin"
        return self.create(Role.ADMIN, (), name, now_s)


def write_credentials(path: Path, key: ApiKey) -> bool:
    """Make ``path`` (mode 0600, AWS shared-credentials format) hold ``key`` under the
    profile ``corral``; other profiles in it are kept. Returns whether it changed."""
    parser = configparser.RawConfigParser()
    if path.exists():
        try:
            parser.read_string(path.read_text())
        except (configparser.Error, UnicodeDecodeError):
            parser = configparser.RawConfigParser()  # unreadable: start it again
    wanted = {"aws_access_key_id": key.access_key_id, "aws_secret_access_key": key.secret}
    if parser.has_section(PROFILE) and all(
        parser.get(PROFILE, k, fallback=None) == v for k, v in wanted.items()
    ):
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return False
    if not parser.has_section(PROFILE):
        parser.add_section(PROFILE)
    for k, v in wanted.items():
        parser.set(PROFILE, k, v)
    text = io.StringIO()
    parser.write(text)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text.getvalue())
    os.replace(temporary, path)
    return True
