"""The log channels of one environment against real sockets: whole lines handed on in
blocks, channels served in turn, a budget that makes a chatty writer wait, and ``drain``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from corral.runtime.logsock import (
    LINE_COST_BYTES,
    MAX_RECORD_BYTES,
    LogBudget,
    LogChannels,
)
from tests.helpers import eventually

Output = list[tuple[int | None, bytes]]


def channels(
    budget: LogBudget | None = None, throttles: list[float] | None = None
) -> tuple[LogChannels, Output]:
    output: Output = []
    made = LogChannels(
        lambda pid, block: output.append((pid, block)),
        budget,
        None if throttles is None else throttles.append,
    )
    return made, output


def lines_of(output: Output) -> list[bytes]:
    return [line for _, block in output for line in block.split(b"\n")]


@pytest.mark.asyncio
async def test_output_is_handed_on_in_blocks_of_whole_lines() -> None:
    logs, output = channels()
    writer = logs.socket_pair("stdout")
    logs.set_pid(42)
    try:
        writer.sendall(b"one\ntwo\nthr")
        await eventually(lambda: len(output) == 1)
        assert output == [(42, b"one\ntwo")]  # one call for both lines; "thr" waits
        writer.sendall(b"ee\n")
        await eventually(lambda: len(output) == 2)
        assert output[1] == (42, b"three")
        writer.sendall(b"unfinished")
        writer.close()
        await eventually(lambda: len(output) == 3)
        assert output[2] == (42, b"unfinished")  # the end of the stream ends the line
    finally:
        writer.close()
        logs.close()


@pytest.mark.asyncio
async def test_a_line_longer_than_cloudwatch_allows_is_split() -> None:
    logs, output = channels()
    writer = logs.socket_pair("stdout")
    try:
        sender = asyncio.get_running_loop().sock_sendall(
            writer, b"y" * (MAX_RECORD_BYTES + 10) + b"\n"
        )
        writer.setblocking(False)
        await sender
        await eventually(lambda: sum(len(b) for _, b in output) >= MAX_RECORD_BYTES + 10)
        assert [len(block) for _, block in output] == [MAX_RECORD_BYTES, 10]
    finally:
        writer.close()
        logs.close()


@pytest.mark.asyncio
async def test_busy_channels_take_turns_one_chunk_at_a_time() -> None:
    logs, output = channels()
    first = logs.socket_pair("stdout")
    logs.set_pid(1)
    second = logs.socket_pair("stdout")
    logs.set_pid(2)
    chunk = (b"z" * 1023 + b"\n") * 64  # 64 KiB: one read
    try:
        for sock in (first, second):
            sock.setblocking(False)
            for _ in range(3):
                sock.send(chunk)
        await eventually(lambda: len(output) >= 4)
        # Neither channel is read three times in a row while the other waits.
        order = [pid for pid, _ in output[:4]]
        assert order.count(1) == 2 and order.count(2) == 2, order
    finally:
        first.close()
        second.close()
        logs.close()


@pytest.mark.asyncio
async def test_over_its_budget_a_chatty_writer_waits_and_nothing_is_lost() -> None:
    throttles: list[float] = []
    budget = LogBudget(rate_bytes_per_s=200_000, burst_bytes=100_000)
    logs, output = channels(budget, throttles)
    writer = logs.socket_pair("stdout")
    logs.set_pid(7)
    writer.setblocking(False)
    line = b"x" * 999
    sent = 0
    start = asyncio.get_running_loop().time()
    try:
        # Write as fast as the socket takes it for 0.5 s, as a print loop would.
        while asyncio.get_running_loop().time() - start < 0.5:
            try:
                writer.send(line + b"\n")
                sent += 1
            except BlockingIOError:
                await asyncio.sleep(0.001)  # the writer waits: backpressure
        read = len(lines_of(output))
        elapsed = asyncio.get_running_loop().time() - start
        cost = len(line) + 1 + LINE_COST_BYTES
        # What was read is about the burst plus the rate over the time, never all of it.
        assert read * cost <= budget.burst_bytes + budget.rate_bytes_per_s * elapsed + 70_000
        assert sent > read
        assert throttles and logs.throttled_s > 0
        writer.close()
        await eventually(lambda: len(lines_of(output)) == sent, timeout_s=20)
        assert set(lines_of(output)) == {line}
    finally:
        writer.close()
        logs.close()


@pytest.mark.asyncio
async def test_drain_reads_what_a_paused_writer_wrote_before_it_answered() -> None:
    budget = LogBudget(rate_bytes_per_s=1000, burst_bytes=1000)
    logs, output = channels(budget)
    writer = logs.socket_pair("stdout")
    logs.set_pid(9)
    try:
        writer.sendall(b"a" * 5000 + b"\n")  # over budget: reading pauses for seconds
        await eventually(lambda: len(output) == 1)
        writer.sendall(b"written before the answer\n")
        await asyncio.sleep(0.05)
        assert len(output) == 1  # paused
        logs.drain(9)
        assert output[-1] == (9, b"written before the answer")
    finally:
        writer.close()
        logs.close()


@pytest.mark.asyncio
async def test_workers_connecting_to_the_log_socket_are_known_by_pid(tmp_path: Path) -> None:
    logs, output = channels()
    path = str(tmp_path / "log.sock")
    logs.listen(Path(path))
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await asyncio.get_running_loop().sock_connect(client, path)
        client.sendall(b"from a worker\n")
        await eventually(lambda: len(output) == 1)
        assert output == [(os.getpid(), b"from a worker")]
    finally:
        client.close()
        logs.close()
