"""What storing one invocation's logs costs, part by part, and why request ids are time-ordered.

Builds the batches the server sends its log writer (350 invocations a batch, three records
each: ``platform.start``, a printed line, ``platform.report``) and times, per invocation:
pickling (in the server), unpickling, rendering and inserting (in the writer), with Corral's
request ids (UUID version 7) and, for reference in the same run, random ones (version 4),
on a database that grows to ``--batches`` x 1,050 records.

Run:  .venv/bin/python -m bench.logwriter [--batches 400]
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from corral.runtime.invocation import new_request_id
from corral.telemetry.logdb import LogDatabase
from corral.telemetry.logwriter import HEADER_BYTES, WireRecord, encode, to_rows

GROUP = "/aws/lambda/chatty"
STREAM = "2026/11/28/[1]" + "ab" * 16
ARN = "arn:aws:lambda:us-east-1:123456789012:function:chatty:1"
PER_BATCH = 350


def batch(make_id: Callable[[], str]) -> list[WireRecord]:
    now = time.time()
    records: list[WireRecord] = []
    for _ in range(PER_BATCH):
        rid = make_id()
        records += [
            (now, GROUP, STREAM, rid, "platform.start", (rid, "1", ARN, now)),
            (now, GROUP, STREAM, rid, "", f"handled {{'n': 1}} {rid}"),
            (now, GROUP, STREAM, rid, "platform.report", (rid, "success", 1.234, now, 30)),
        ]
    return records


def run(make_id: Callable[[], str], batches: int) -> dict[str, list[float]]:
    parts: dict[str, list[float]] = {"pickle": [], "unpickle": [], "render": [], "insert": []}
    with tempfile.TemporaryDirectory() as tmp:
        db = LogDatabase(Path(tmp) / "logs.db")
        versions: dict[str, str] = {}
        for _ in range(batches):
            records = batch(make_id)
            t0 = time.perf_counter()
            frame = encode(("rows", records))
            t1 = time.perf_counter()
            _, data = pickle.loads(frame[HEADER_BYTES:])
            t2 = time.perf_counter()
            rows = to_rows(data, versions)
            t3 = time.perf_counter()
            db.insert(rows)
            t4 = time.perf_counter()
            for name, spent in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                parts[name].append(spent * 1e6 / PER_BATCH)
        db.close()
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    args = parser.parse_args()
    tail = max(1, args.batches // 8)
    print(f"µs per invocation (3 records); 'first'/'last': the first and last {tail} batches")
    print(f"{'request ids':14} {'part':9} {'first':>7} {'last':>7}")
    for label, make_id in (("v7 (Corral)", new_request_id), ("v4 (random)", _uuid4)):
        parts = run(make_id, args.batches)
        for name, values in parts.items():
            first = sum(values[:tail]) / tail
            last = sum(values[-tail:]) / tail
            print(f"{label:14} {name:9} {first:7.1f} {last:7.1f}")


def _uuid4() -> str:
    return str(uuid.uuid4())


if __name__ == "__main__":
    main()
