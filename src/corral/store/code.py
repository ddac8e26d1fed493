"""Function code, content-addressed: ``<data-dir>/code/<sha256>.zip`` and its unpacked tree.

A zip is checked before it is kept: it must open, stay under Lambda's unzipped-size limit,
and every entry (and every symlink target) must stay inside the code root. The unpacked
tree is made read-only; identical uploads share one copy.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import posixpath
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from corral.core import errors

__all__ = ["MAX_UNZIPPED_BYTES", "MAX_ZIPPED_BYTES", "CodeStore", "StoredCode"]

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 262_144_000
_MAX_ENTRIES = 20_000
_BAD_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."


@dataclass(frozen=True)
class StoredCode:
    """A stored code package."""

    sha256_hex: str
    code_sha256: str  # base64, as Lambda's CodeSha256
    size: int


class CodeStore:
    """Zips and their unpacked trees under one directory."""

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> StoredCode:
        """Check, keep and unpack a zip; return its identity.

        Raises:
            errors.InvalidRequest: not a zip, too large, or an entry escapes the code root.
            errors.EntityTooLarge: the zip itself is over 50 MB.
        """
        if len(data) > MAX_ZIPPED_BYTES:
            raise errors.EntityTooLarge(
                f"Zipped size must be smaller than {MAX_ZIPPED_BYTES} bytes"
            )
        digest = hashlib.sha256(data)
        stored = StoredCode(
            sha256_hex=digest.hexdigest(),
            code_sha256=base64.b64encode(digest.digest()).decode(),
            size=len(data),
        )
        target = self.path(stored.sha256_hex)
        if target.is_dir():
            return stored
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise errors.InvalidRequest(_BAD_ZIP) from exc
        with archive:
            _check_entries(archive)
            self._unpack(archive, target)
        zip_path = self._root / f"{stored.sha256_hex}.zip"
        if not zip_path.exists():
            _atomic_write(zip_path, data)
        return stored

    def path(self, sha256_hex: str) -> Path:
        """Where the unpacked tree of a stored zip lives."""
        return self._root / sha256_hex

    def read_zip(self, sha256_hex: str) -> bytes:
        return self.zip_path(sha256_hex).read_bytes()

    def zip_path(self, sha256_hex: str) -> Path:
        """Where a stored zip is kept."""
        return self._root / f"{sha256_hex}.zip"

    def ensure_unpacked(self, sha256_hex: str) -> Path:
        """The unpacked tree, unpacking the kept zip again if the tree was removed."""
        target = self.path(sha256_hex)
        if not target.is_dir():
            with zipfile.ZipFile(self._root / f"{sha256_hex}.zip") as archive:
                self._unpack(archive, target)
        return target

    def _unpack(self, archive: zipfile.ZipFile, target: Path) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=self._root))
        try:
            # Files first, links last: no write can go through a link from the zip, and
            # every link is checked where it really points once the tree is complete.
            infos = archive.infolist()
            for info in infos:
                if not _is_symlink(info):
                    _extract(archive, info, scratch)
            for info in infos:
                if _is_symlink(info):
                    _link(archive, info, scratch)
            _make_read_only(scratch)
            try:
                os.rename(scratch, target)
            except OSError:
                if not target.is_dir():
                    raise
        finally:
            if scratch.exists():
                _make_writable(scratch)
                shutil.rmtree(scratch, ignore_errors=True)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _safe_name(name: str) -> str | None:
    """The entry's path relative to the code root, or None if it would escape it."""
    normalized = posixpath.normpath(name.replace("\\", "/"))
    if normalized.startswith("/") or normalized == ".." or normalized.startswith("../"):
        return None
    if ":" in normalized.split("/", 1)[0]:
        return None
    return normalized


def _check_entries(archive: zipfile.ZipFile) -> None:
    infos = archive.infolist()
    if len(infos) > _MAX_ENTRIES:
        raise errors.InvalidRequest(f"The code package has more than {_MAX_ENTRIES} files.")
    total = 0
    for info in infos:
        name = _safe_name(info.filename)
        if name is None:
            raise errors.InvalidRequest(
                f"{_BAD_ZIP} The entry '{info.filename[:200]}' escapes the code directory."
            )
        total += info.file_size
        if total >= MAX_UNZIPPED_BYTES:
            raise errors.InvalidRequest(
                f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
            )
        if _is_symlink(info):
            link = archive.read(info).decode("utf-8", "replace")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
            if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise errors.InvalidRequest(
                    f"{_BAD_ZIP} The symbolic link '{info.filename[:200]}' points outside "
                    "the code directory."
                )


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    name = _safe_name(info.filename)
    assert name is not None  # checked by _check_entries
    dest = root / name
    if info.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        return
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(dest, "wb") as sink:
            # Copy by chunks and stop at the declared size: a lying header cannot inflate.
            remaining = info.file_size
            while remaining > 0:
                chunk = source.read(min(1 << 20, remaining))
                if not chunk:
                    break
                sink.write(chunk)
                remaining -= len(chunk)
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
        raise errors.InvalidRequest(_BAD_ZIP) from exc
    mode = (info.external_attr >> 16) & 0o777
    if mode & 0o111:
        dest.chmod(0o755)


def _link(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    name = _safe_name(info.filename)
    assert name is not None  # checked by _check_entries
    dest = root / name
    real_root = os.path.realpath(root)
    escape = errors.InvalidRequest(
        f"{_BAD_ZIP} The symbolic link '{info.filename[:200]}' points outside the code directory."
    )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not _inside(os.path.realpath(dest.parent), real_root):
            raise escape
        os.symlink(archive.read(info).decode("utf-8", "replace"), dest)
    except OSError as exc:
        raise errors.InvalidRequest(_BAD_ZIP) from exc
    if not _inside(os.path.realpath(dest), real_root):
        raise escape


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _make_read_only(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & 0o555 | 0o444)
        Path(dirpath).chmod(0o555)


def _make_writable(root: Path) -> None:
    for dirpath, _, _ in os.walk(root):
        Path(dirpath).chmod(0o755)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".zip-", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
