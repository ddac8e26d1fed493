"""Function code from a template's local paths, zipped as ``sam build`` would for Python.

A ``CodeUri`` (SAM) or ``Code`` (CloudFormation) that names a local directory or ``.zip`` is
replaced, before the SAM transform, by a placeholder ``s3://corral-local/<digest>`` (the
digest of the sources, so that a change of code changes what AWS's transform derives from
it, such as the logical id of an ``AutoPublishAlias`` version). ``build(source)`` makes the
zip: the directory's files, plus, when it has a ``requirements.txt``, the packages pip
installs for the function's Python (``--python-version``, manylinux wheels), as ``sam build``
puts them next to the code.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from corral.core import errors

__all__ = ["PLACEHOLDER_BUCKET", "CodeSource", "build", "source_of"]

PLACEHOLDER_BUCKET = "corral-local"
_SKIPPED = {"__pycache__", ".git", ".aws-sam", ".venv"}
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same sources, the same zip


@dataclass(frozen=True)
class CodeSource:
    """Local code of a function: a directory or a zip, and its digest."""

    path: Path
    digest: str

    @property
    def placeholder(self) -> str:
        return f"s3://{PLACEHOLDER_BUCKET}/{self.digest}"


def source_of(value: str, base: Path) -> CodeSource:
    """The code a local ``CodeUri`` names (relative to the template's directory).

    Raises:
        errors.TemplateError: it does not exist.
    """
    path = (base / value).resolve()
    if not path.exists():
        raise errors.TemplateError(f"CodeUri {value} does not exist (looked for {path})")
    digest = hashlib.sha256()
    for file in _files(path):
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(b"\0" + file.read_bytes() + b"\0")
    return CodeSource(path, digest.hexdigest()[:32])


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found: list[Path] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        found.extend(Path(root) / f for f in sorted(files) if not f.endswith(".pyc"))
    return found


def build(source: CodeSource, runtime: str | None) -> bytes:
    """The deployment zip of ``source`` (a zip file is taken as it is).

    Raises:
        errors.TemplateError: pip could not install the requirements (its output says why).
    """
    if source.path.is_file():
        return source.path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="corral-build-") as scratch:
        extra = Path(scratch)
        requirements = source.path / "requirements.txt"
        if requirements.is_file() and (runtime or "").startswith("python"):
            _install(requirements, extra, runtime or "")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for root in (extra, source.path):
                for file in _files(root):
                    info = zipfile.ZipInfo(str(file.relative_to(root)), _EPOCH)
                    info.external_attr = (file.stat().st_mode & 0o777) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, file.read_bytes())
        return buffer.getvalue()


def _install(requirements: Path, target: Path, runtime: str) -> None:
    version = runtime.removeprefix("python")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "--python-version",
            version,
            "--implementation",
            "cp",
            "--platform",
            "manylinux2014_x86_64",
            "--only-binary=:all:",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise errors.TemplateError(
            f"pip could not install {requirements} for {runtime}:\n{done.stderr.strip()[-2000:]}"
        )
