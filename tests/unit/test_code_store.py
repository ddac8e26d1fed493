"""``corral.store.code.CodeStore``: checking, keeping and unpacking function code zips."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from corral.core import errors
from corral.store import code


def _zip(
    files: dict[str, bytes] | None = None,
    *,
    links: dict[str, str] | None = None,
    executable: tuple[str, ...] = (),
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
        for name, data in (files or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | (0o755 if name in executable else 0o644)) << 16
            archive.writestr(info, data)
    return buf.getvalue()


def _with_declared_size(data: bytes, size: int) -> bytes:
    """The zip with the uncompressed size of its first central-directory entry replaced."""
    at = data.index(b"PK\x01\x02") + 24
    return data[:at] + struct.pack("<I", size) + data[at + 4 :]


class _Claims(bytes):
    """Bytes that report a length of their choosing (a 50 MB body without 50 MB)."""

    claimed: int = 0

    def __len__(self) -> int:
        return self.claimed


def _claiming(length: int, data: bytes = b"not a zip") -> bytes:
    fake = _Claims(data)
    fake.claimed = length
    return fake


def _remove_tree(path: Path) -> None:
    for dirpath, _dirs, _files in os.walk(path):
        Path(dirpath).chmod(0o755)
    shutil.rmtree(path)


@pytest.fixture
def store(tmp_path: Path) -> code.CodeStore:
    return code.CodeStore(tmp_path / "code")


def test_a_valid_zip_is_unpacked_and_identified_by_its_base64_sha256(
    store: code.CodeStore,
) -> None:
    data = _zip({"app.py": b"def handler(e, c): return e\n", "lib/util.py": b"X = 1\n"})
    stored = store.put(data)
    digest = hashlib.sha256(data)
    assert stored.sha256_hex == digest.hexdigest()
    assert stored.code_sha256 == base64.b64encode(digest.digest()).decode()
    assert stored.size == len(data)
    tree = store.path(stored.sha256_hex)
    assert (tree / "app.py").read_bytes() == b"def handler(e, c): return e\n"
    assert (tree / "lib" / "util.py").read_bytes() == b"X = 1\n"
    assert store.read_zip(stored.sha256_hex) == data


def test_the_unpacked_tree_is_read_only_and_keeps_executable_bits(
    store: code.CodeStore,
) -> None:
    stored = store.put(
        _zip({"app.py": b"", "bootstrap": b"#!/bin/sh\n"}, executable=("bootstrap",))
    )
    tree = store.path(stored.sha256_hex)
    assert stat.S_IMODE(tree.stat().st_mode) == 0o555
    assert stat.S_IMODE((tree / "app.py").stat().st_mode) == 0o444
    assert stat.S_IMODE((tree / "bootstrap").stat().st_mode) == 0o555


def test_identical_uploads_share_one_copy(store: code.CodeStore, tmp_path: Path) -> None:
    data = _zip({"app.py": b"x"})
    first = store.put(data)
    second = store.put(data)
    assert first == second
    assert sorted(p.name for p in (tmp_path / "code").iterdir()) == [
        first.sha256_hex,
        f"{first.sha256_hex}.zip",
    ]


def test_a_symlink_inside_the_code_root_is_kept(store: code.CodeStore) -> None:
    stored = store.put(_zip({"real.py": b"x"}, links={"alias.py": "real.py"}))
    tree = store.path(stored.sha256_hex)
    assert os.readlink(tree / "alias.py") == "real.py"
    assert (tree / "alias.py").read_bytes() == b"x"


def test_data_that_is_not_a_zip_is_refused(store: code.CodeStore) -> None:
    with pytest.raises(errors.InvalidRequest, match="Could not unzip uploaded file"):
        store.put(b"this is not a zip file")


@pytest.mark.parametrize("name", ["../x.py", "/abs.py", "a/../../x.py", "..\\x.py", "C:/x.py"])
def test_an_entry_that_escapes_the_code_root_is_refused(
    store: code.CodeStore, tmp_path: Path, name: str
) -> None:
    with pytest.raises(errors.InvalidRequest, match="escapes the code directory"):
        store.put(_zip({"app.py": b"", name: b"evil"}))
    # Nothing of a refused upload is kept.
    assert list((tmp_path / "code").iterdir()) == []


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside", "sub/../../outside"])
def test_a_symlink_pointing_outside_the_code_root_is_refused(
    store: code.CodeStore, target: str
) -> None:
    with pytest.raises(errors.InvalidRequest, match="points outside the code directory"):
        store.put(_zip({"app.py": b""}, links={"link": target}))


def test_a_chain_of_symlinks_cannot_write_outside_the_code_root(
    store: code.CodeStore, tmp_path: Path
) -> None:
    # Each link looks inside on its own; together they lead out of the tree.
    data = _zip({"m/escaped.txt": b"evil"}, links={"a/l": "..", "a/l/m": ".."})
    with pytest.raises(errors.InvalidRequest, match="Could not unzip uploaded file"):
        store.put(data)
    only_links = _zip({"app.py": b""}, links={"a/l": "..", "a/l/m": ".."})
    with pytest.raises(errors.InvalidRequest, match="points outside the code directory"):
        store.put(only_links)
    assert not (tmp_path / "code" / "escaped.txt").exists()
    assert not (tmp_path / "code" / "m").exists()


def test_a_zip_declaring_too_large_an_unzipped_size_is_refused(store: code.CodeStore) -> None:
    data = _with_declared_size(_zip({"big.bin": b"x"}), code.MAX_UNZIPPED_BYTES)
    with pytest.raises(errors.InvalidRequest, match="Unzipped size must be smaller than"):
        store.put(data)


def test_a_zip_over_50_mb_is_request_entity_too_large(store: code.CodeStore) -> None:
    with pytest.raises(errors.EntityTooLarge):
        store.put(_claiming(code.MAX_ZIPPED_BYTES + 1))


def test_a_zip_of_exactly_50_mb_is_not_too_large(store: code.CodeStore) -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        store.put(_claiming(code.MAX_ZIPPED_BYTES))
    assert not isinstance(info.value, errors.EntityTooLarge)


def test_ensure_unpacked_recreates_a_removed_tree(store: code.CodeStore) -> None:
    stored = store.put(_zip({"app.py": b"print(1)\n"}))
    tree = store.path(stored.sha256_hex)
    _remove_tree(tree)
    assert store.ensure_unpacked(stored.sha256_hex) == tree
    assert (tree / "app.py").read_bytes() == b"print(1)\n"
    assert store.ensure_unpacked(stored.sha256_hex) == tree
