"""The binary event stream (``application/vnd.amazon.eventstream``) botocore reads.

A message: a prelude (total length, headers length, CRC32 of those 8 bytes), the headers
(each: name length u8, name, type 7 = string, value length u16, value), the payload, and a
CRC32 of everything before it; big-endian throughout. Only string headers are written.
"""

from __future__ import annotations

import json
import struct
import zlib

__all__ = ["event", "invoke_complete", "payload_chunk"]

_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def event(event_type: str, payload: bytes, content_type: str) -> bytes:
    """One event message of the stream."""
    headers = _headers(
        {":event-type": event_type, ":content-type": content_type, ":message-type": "event"}
    )
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def payload_chunk(chunk: bytes) -> bytes:
    """``PayloadChunk``: bytes of the function's response (the event's payload is them)."""
    return event("PayloadChunk", chunk, "application/octet-stream")


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    """``InvokeComplete``: the end of the stream, with the error and the log tail, if any."""
    body: dict[str, str] = {}
    if error_code:
        body["ErrorCode"] = error_code
    if error_details:
        body["ErrorDetails"] = error_details
    if log_result is not None:
        body["LogResult"] = log_result
    return event("InvokeComplete", json.dumps(body).encode(), "application/json")
