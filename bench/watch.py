"""`corral deploy --watch`: from saving a handler to the next invocation running it.

One server, one template with a classic function behind an ``AutoPublishAlias`` (the watch
mode updates its code, publishes a version and moves the alias). For each of ``--edits``
edits the handler is rewritten to return a new token and the alias is invoked until it
returns it; the time from the write to that answer is the watch latency. Reference, in the
same run: the same change made by hand with boto3 (UpdateFunctionCode, wait until updated,
PublishVersion, UpdateAlias, then invoke), the floor any tool has to pay.

Run:  .venv/bin/python -m bench.watch [--edits 10]
Writes the numbers to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers import Server, start_server, zip_code

HERE = Path(__file__).parent
TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Edited:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      AutoPublishAlias: live
"""


def source(token: str) -> str:
    return f"def handler(event, context):\n    return {token!r}\n"


def answer(lam: Any, name: str) -> Any:
    got = lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")
    return json.loads(got["Payload"].read())


def until(lam: Any, name: str, token: str, timeout_s: float = 60.0) -> float:
    started = time.monotonic()
    while answer(lam, name) != token:
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{token} not served after {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic()


def by_watch(server: Server, work: Path, edits: int) -> list[float]:
    lam = server.client()
    handler = work / "src" / "app.py"
    env = {**os.environ, **server.cli_env(), "CORRAL_DATA_DIR": str(server.data_dir)}
    log = work.parent / f"{work.name}-watch.log"
    out = log.open("w")
    command = [sys.executable, "-m", "corral", "deploy", str(work / "template.yaml")]
    command += ["--stack-name", "bench", "--watch", "--endpoint-url", server.url]
    watcher = subprocess.Popen(
        command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        while "watching" not in log.read_text():
            if watcher.poll() is not None:
                raise RuntimeError("the watch ended")
            time.sleep(0.05)
        samples = []
        for n in range(edits):
            token = f"watch-{n}"
            written = time.monotonic()
            handler.write_text(source(token))
            samples.append(until(lam, "bench-Edited", token) - written)
        return samples
    except RuntimeError:
        print(log.read_text()[-3000:])
        raise
    finally:
        os.killpg(watcher.pid, signal.SIGINT)
        watcher.wait(timeout=30)
        out.close()


def by_hand(server: Server, edits: int) -> list[float]:
    lam = server.client()
    lam.create_function(
        FunctionName="manual",
        Runtime="python3.12",
        Role="arn:aws:iam::123456789012:role/x",
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": source("start")})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="manual")
    version = lam.publish_version(FunctionName="manual")["Version"]
    lam.create_alias(FunctionName="manual", Name="live", FunctionVersion=version)
    samples = []
    for n in range(edits):
        token = f"hand-{n}"
        started = time.monotonic()
        lam.update_function_code(FunctionName="manual", ZipFile=zip_code({"app.py": source(token)}))
        while (
            lam.get_function_configuration(FunctionName="manual")["LastUpdateStatus"]
            != "Successful"
        ):
            time.sleep(0.02)
        version = lam.publish_version(FunctionName="manual")["Version"]
        lam.update_alias(FunctionName="manual", Name="live", FunctionVersion=version)
        samples.append(until(lam, "manual", token) - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-watch-") as scratch:
        work = Path(scratch)
        (work / "src").mkdir()
        (work / "src" / "app.py").write_text(source("start"))
        (work / "template.yaml").write_text(TEMPLATE)
        server = start_server(work / "data")
        try:
            reference = by_hand(server, args.edits)
            watched = by_watch(server, work, args.edits)
        finally:
            server.stop()
    result = {
        "edits": args.edits,
        "watch_p50_s": statistics.median(watched),
        "watch_max_s": max(watched),
        "by_hand_p50_s": statistics.median(reference),
        "ratio_p50": statistics.median(watched) / statistics.median(reference),
        "watch_s": watched,
        "by_hand_s": reference,
    }
    print(
        f"save -> new code served: watch p50 {result['watch_p50_s']:.3f} s "
        f"(max {result['watch_max_s']:.3f} s); by hand with boto3 p50 "
        f"{result['by_hand_p50_s']:.3f} s; ratio {result['ratio_p50']:.2f}x"
    )
    out = HERE / "results" / f"watch-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
