"""The key ring over its SQLite table, and the shared-credentials file it writes."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest

from corral.auth.keyring import KeyRing, write_credentials
from corral.auth.policy import Role
from corral.core import errors
from corral.store.db import Database
from corral.store.keys import KeyTable


def _ring(path: Path) -> tuple[Database, KeyRing]:
    db = Database(path / "corral.db")
    return db, KeyRing(KeyTable(db))


def test_keys_survive_a_reopen_and_the_admin_key_is_made_once(tmp_path: Path) -> None:
    db, ring = _ring(tmp_path)
    admin = ring.admin(1.0)
    assert admin.role is Role.ADMIN and admin.name == "admin"
    assert ring.admin(2.0) == admin
    invoker = ring.create(Role.INVOKE, ["orders-*"], "orders", 3.0)
    db.close()
    db, again = _ring(tmp_path)
    try:
        assert again.get(admin.access_key_id) == admin
        assert again.get(invoker.access_key_id) == invoker
        assert [k.name for k in again.list()] == ["admin", "orders"]
        assert stat.S_IMODE((tmp_path / "corral.db").stat().st_mode) == 0o600
    finally:
        db.close()


def test_names_are_unique_and_the_last_admin_key_stays(tmp_path: Path) -> None:
    db, ring = _ring(tmp_path)
    try:
        admin = ring.admin(1.0)
        with pytest.raises(errors.Conflict):
            ring.create(Role.INVOKE, ["*"], "admin", 2.0)
        with pytest.raises(errors.Conflict) as last:
            ring.delete(admin.access_key_id)
        assert "last admin key" in last.value.message
        second = ring.create(Role.ADMIN, [], "ops", 3.0)
        assert ring.delete(admin.access_key_id) == admin
        assert ring.get(admin.access_key_id) is None
        assert ring.admin(4.0) == second
        with pytest.raises(errors.NotFound):
            ring.delete(admin.access_key_id)
    finally:
        db.close()


def test_the_credentials_file_holds_the_key_alone_readable_by_its_owner(tmp_path: Path) -> None:
    db, ring = _ring(tmp_path)
    try:
        key = ring.admin(1.0)
        path = tmp_path / "credentials"
        path.write_text("[mine]\naws_access_key_id = X\naws_secret_access_key = Y\n")
        path.chmod(0o644)
        assert write_credentials(path, key)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        parser = configparser.RawConfigParser()
        parser.read(path)
        assert parser["corral"]["aws_access_key_id"] == key.access_key_id
        assert parser["corral"]["aws_secret_access_key"] == key.secret
        assert parser["mine"]["aws_access_key_id"] == "X"  # other profiles are kept
        assert not write_credentials(path, key)  # already right: untouched
        path.write_text("not an ini file [")
        assert write_credentials(path, key)
        assert "[corral]" in path.read_text()
    finally:
        db.close()
