"""What logging and metrics cost on the invoke path: the same server with them on and off,
measured in the same run.

* ``on``: the defaults, ``CORRAL_LOG_STORE=sqlite`` and ``CORRAL_METRICS=on`` (every record
  stored in ``logs.db`` by the log writer process, invocations counted, the per-second
  history sampled, ``/metrics`` live);
* ``off``: ``CORRAL_LOG_STORE=off`` and ``CORRAL_METRICS=off``.

Both serve a published Managed Instances function (3 environments x 4 slots, scaling pinned
so the two stay comparable) whose handler prints one line and returns its event, so each
invocation writes three records (``platform.start``, the line, ``platform.report``).

Both servers run side by side (the idle one costs next to nothing) and are loaded in turn,
in short runs whose order alternates, so slow drifts of this shared machine (its speed
varies by 10% or more from one minute to the next) hit both alike: 32 clients (throttled
ones back off ``--backoff-ms``) for ``--rounds`` pairs of runs, then 1 client. The result
is the median of the per-pair ratios, with the median rate of each mode beside it. The
``on`` log database grows all along (about 35,000 records a run).

The rate of one short run swings by 10% or more with the machine, so each run also records
what the machine spent: busy CPU time (all processes, from ``/proc/stat``) per successful
invocation, and the log writer's own CPU time per invocation. On this 2-core machine the
load keeps both cores busy, so CPU per invocation is what sets the rate, and it is far
steadier than the rate itself.

Run:  .venv/bin/python -m bench.telemetry [--seconds 5] [--rounds 12]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from tests.helpers import Server, start_server

from bench import invoke
from bench.invoke import wrk

HERE = Path(__file__).parent
CHATTY = "def handler(event, context):\n    print('handled', event)\n    return event\n"
# Both without authentication (--auth none): what is compared is logging and metrics alone,
# as in the runs before authentication existed (bench.invoke measures signatures).
MODES = {
    "on": {"CORRAL_LOG_STORE": "sqlite", "CORRAL_METRICS": "on", "CORRAL_AUTH": "none"},
    "off": {"CORRAL_LOG_STORE": "off", "CORRAL_METRICS": "off", "CORRAL_AUTH": "none"},
}


def deploy(server: Server, runtime: str) -> None:
    # Fixed capacity: both servers keep exactly 3 x 4 slots however hard they are pushed.
    invoke.deploy(server, runtime, name="chatty", code=CHATTY, environments=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--runtime", default="python3.11")
    parser.add_argument("--backoff-ms", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    data = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    servers = {
        mode: start_server(data / mode, CORRAL_LOG_LEVEL="warning", **env)
        for mode, env in MODES.items()
    }
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {m: {1: [], 32: []} for m in MODES}
    try:
        urls = {}
        for mode, server in servers.items():
            deploy(server, args.runtime)
            urls[mode] = f"{server.url}/2015-03-31/functions/chatty/invocations?Qualifier=1"
            wrk(urls[mode], 8, 3)  # warm-up
        for clients, rounds in ((32, args.rounds), (1, max(2, args.rounds // 2))):
            for round_ in range(rounds):
                order = list(MODES) if round_ % 2 == 0 else list(reversed(MODES))
                for mode in order:
                    result = _measured(
                        functools.partial(wrk, urls[mode], clients, args.seconds, args.backoff_ms),
                        servers[mode].proc.pid,
                    )
                    runs[mode][clients].append(result)
                print(
                    f"{clients:2} client(s), round {round_ + 1}/{rounds}: "
                    f"on {runs['on'][clients][-1]['ok_per_s']:5.0f} ok/s, "
                    f"off {runs['off'][clients][-1]['ok_per_s']:5.0f} ok/s",
                    flush=True,
                )
        stored = len(servers["on"].log_events("chatty", limit="10000"))
    finally:
        for server in servers.values():
            server.stop()
        records = _records(data / "on")
        shutil.rmtree(data, ignore_errors=True)
    summary: dict[str, Any] = {}
    for mode in MODES:
        summary[mode] = {
            "ok_per_s_32": statistics.median(r["ok_per_s"] for r in runs[mode][32]),
            "p50_ms_1": statistics.median(r["p50_us"] for r in runs[mode][1]) / 1000,
            "p99_ms_1": statistics.median(r["p99_us"] for r in runs[mode][1]) / 1000,
            "machine_cpu_us_per_ok_32": statistics.median(
                r["machine_cpu_us_per_ok"] for r in runs[mode][32]
            ),
            **{
                f"{part}_cpu_us_per_ok_32": statistics.median(
                    r[f"{part}_cpu_us_per_ok"] for r in runs[mode][32]
                )
                for part in ("server", "writer", "runtimes")
            },
        }
    ratios = [
        on["ok_per_s"] / off["ok_per_s"]
        for on, off in zip(runs["on"][32], runs["off"][32], strict=True)
    ]
    ratio = statistics.median(ratios)
    cpu_ratio = statistics.median(
        off["machine_cpu_us_per_ok"] / on["machine_cpu_us_per_ok"]
        for on, off in zip(runs["on"][32], runs["off"][32], strict=True)
    )
    summary["cpu_off_vs_on_32"] = round(cpu_ratio, 3)
    summary["on_vs_off_32"] = round(ratio, 3)
    summary["on_vs_off_32_per_round"] = [round(r, 3) for r in ratios]
    summary["target"] = "at most 10% fewer requests/s with logging and metrics on"
    summary["met"] = ratio >= 0.90
    summary["records_seen_in_the_last_page"] = stored
    summary["records_stored"] = records
    print(
        f"{'mode':5} {'ok req/s (32)':>14} {'p50 ms (1)':>11} {'p99 ms (1)':>11} "
        f"{'CPU us/ok (32)':>15} {'server':>7} {'writer':>7} {'runtimes':>9}"
    )
    for mode in MODES:
        row = summary[mode]
        print(
            f"{mode:5} {row['ok_per_s_32']:>14.0f} {row['p50_ms_1']:>11.3f} "
            f"{row['p99_ms_1']:>11.3f} {row['machine_cpu_us_per_ok_32']:>15.0f} "
            f"{row['server_cpu_us_per_ok_32']:>7.0f} {row['writer_cpu_us_per_ok_32']:>7.0f} "
            f"{row['runtimes_cpu_us_per_ok_32']:>9.0f}"
        )
    print(f"records in the on server's log database at the end: {records}")
    print(f"on/off at 32 clients, median of {len(ratios)} pairs: {ratio:.3f} "
          f"({'met' if summary['met'] else 'NOT met'}: >= 0.90)")  # fmt: skip
    print(f"CPU per invocation, off/on at 32 clients, median of the pairs: {cpu_ratio:.3f}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"telemetry-{stamp}.json").write_text(json.dumps({"runs": runs, **summary}, indent=2))


def _cpu_s(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _busy_s() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def _measured(run: Callable[[], dict[str, Any]], server_pid: int) -> dict[str, Any]:
    """``run()``'s result with CPU time per success: the machine's, the server's, its log
    writer's, and its runtimes' (every other process it started)."""
    server = psutil.Process(server_pid)
    others = []
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            writer = "corral.telemetry.logwriter" in child.cmdline()
            others.append((child, "writer" if writer else "runtimes"))

    def parts() -> dict[str, float]:
        found = {"machine": _busy_s(), "server": _cpu_s(server), "writer": 0.0, "runtimes": 0.0}
        for child, part in others:
            found[part] += _cpu_s(child)
        return found

    before = parts()
    result = run()
    after = parts()
    ok = max(1, result["ok"])
    for name in before:
        result[f"{name}_cpu_us_per_ok"] = (after[name] - before[name]) * 1e6 / ok
    return result


def _records(data: Path) -> int:
    with contextlib.closing(sqlite3.connect(data / "logs.db")) as db:
        return int(db.execute("SELECT count(*) FROM logs").fetchone()[0])


if __name__ == "__main__":
    main()
