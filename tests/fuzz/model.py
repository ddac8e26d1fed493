"""Requests for every Lambda operation, generated from botocore's model of the API.

``requests_for(operation)`` is a hypothesis strategy of HTTP requests for one operation:
values shaped by the operation's input shape (strings within or beyond their lengths and
patterns, enums and non-members, numbers in and out of range, nested structures) mixed with
hostile ones (wrong types, nulls, huge strings, lone surrogates, NaN, deep nesting, bad
base64, malicious zips), placed where the model says (path, query string, headers, JSON body
or raw payload), and sometimes mangled after serialisation (truncated, random bytes).
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import sys
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StringShape, StructureShape
from hypothesis import strategies as st

__all__ = ["OPERATIONS", "SERVED", "FuzzRequest", "requests_for", "seed_names"]

MODEL = botocore.session.get_session().get_service_model("lambda")
OPERATIONS = sorted(MODEL.operation_names)


def _served() -> frozenset[str]:
    """The operations Corral serves, as docs/compatibility.md reports them."""
    path = Path(__file__).parents[2] / "scripts" / "compatibility.py"
    spec = importlib.util.spec_from_file_location("corral_compatibility", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    found = module.operations(MODEL, module.served_routes())
    return frozenset(op.name for op in found if op.supported)


SERVED = _served()

# Names the server knows (seeded before the run), so generated calls reach real resources.
SEED_FUNCTION = "fz"
SEED_ALIAS = "live"
SEED_PROVIDER = "fz-cp"


def seed_names() -> list[str]:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{SEED_FUNCTION}"
    return [
        SEED_FUNCTION,
        f"{SEED_FUNCTION}:1",
        f"{SEED_FUNCTION}:{SEED_ALIAS}",
        f"{SEED_FUNCTION}:$LATEST",
        arn,
        f"{arn}:1",
        f"123456789012:function:{SEED_FUNCTION}",
        SEED_PROVIDER,
        "1",
        "$LATEST",
        "$LATEST.PUBLISHED",
        SEED_ALIAS,
    ]


@dataclass
class FuzzRequest:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def url_path(self) -> str:
        if not self.query:
            return self.path
        encoded = [
            (k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
            for k, v in self.query
        ]
        return self.path + "?" + urllib.parse.urlencode(encoded, quote_via=urllib.parse.quote)


def _zip(files: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo("link")
            info.external_attr = 0o120777 << 16
            archive.writestr(info, symlink)
    return buffer.getvalue()


_HANDLER = b"def handler(event, context):\n    return event\n"
ZIPS = [
    _zip({"app.py": _HANDLER}),
    _zip({"../../etc/evil.py": b"x"}),
    _zip({"/abs/evil.py": b"x"}),
    _zip({"app.py": _HANDLER}, symlink="/etc/passwd"),
    _zip({"bomb.bin": b"\0" * (40 * 1024 * 1024)}),  # 40 MB that deflate to ~40 KB
    b"PK\x03\x04 not really a zip",
    b"",
]

_text = st.text(st.characters(codec="utf-8"), max_size=40)
_surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=4)
_deep = st.integers(1, 3000).map(lambda n: _Raw("[" * n + "]" * n))


class _Raw:
    """A JSON fragment inserted as is (deep nesting cannot be built with json.dumps)."""

    def __init__(self, text: str) -> None:
        self.text = text


HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
    _surrogates,
    st.integers(1_000, 300_000).map(lambda n: "x" * n),
    st.lists(_text, max_size=3),
    st.dictionaries(_text, _text, max_size=3),
    _deep,
)


def _string(shape: Shape, member: str) -> st.SearchStrategy[Any]:
    meta = shape.metadata
    options: list[st.SearchStrategy[Any]] = []
    enum = shape.enum if isinstance(shape, StringShape) else []
    if enum:
        options.append(st.sampled_from(enum))
    low, high = meta.get("min", 0), meta.get("max", 64)
    options.append(st.text(st.characters(codec="utf-8"), min_size=low, max_size=min(high, 80)))
    options.append(st.text("abcXYZ019-_:.$", min_size=max(0, low - 1), max_size=min(high + 2, 90)))
    if any(word in member for word in ("Name", "Qualifier", "Version", "Arn", "Alias", "Resource")):
        options.append(st.sampled_from(seed_names()))
    return st.one_of(*options)


def _value(shape: Shape, member: str, depth: int) -> st.SearchStrategy[Any]:
    typed = _typed(shape, member, depth)
    return st.one_of(typed, typed, typed, HOSTILE)  # typed values three times in four


def _typed(shape: Shape, member: str, depth: int) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "string":
        return _string(shape, member)
    if kind in ("integer", "long"):
        low, high = meta.get("min"), meta.get("max")
        return st.integers(
            min_value=(low - 3) if low is not None else -(2**40),
            max_value=(high + 3) if high is not None else 2**40,
        )
    if kind == "double":
        return st.floats(allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.one_of(st.floats(0, 2e9), _text)
    if kind == "blob":
        return st.one_of(
            st.sampled_from(ZIPS).map(lambda z: base64.b64encode(z).decode()),
            st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
            st.sampled_from(["not base64!", "====", "QQ", "\u00e9\u00e9"]),
        )
    if depth > 3:
        return st.none()
    if isinstance(shape, ListShape):
        return st.lists(_value(shape.member, member, depth + 1), max_size=4)
    if isinstance(shape, MapShape):
        return st.dictionaries(
            _string(shape.key, member), _value(shape.value, member, depth + 1), max_size=4
        )
    if isinstance(shape, StructureShape):
        return st.fixed_dictionaries(
            {},
            optional={name: _value(sub, name, depth + 1) for name, sub in shape.members.items()},
        )
    return HOSTILE


def _to_text(value: Any) -> str:
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, str):
        return value
    return json.dumps(value, default=lambda v: v.text if isinstance(v, _Raw) else str(v))


def _to_json(value: Any) -> str:
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_to_json(v) for v in value) + "]"
    return json.dumps(value)


def _build(operation: OperationModel, params: dict[str, Any], mangle: int) -> FuzzRequest:
    http = operation.http
    template, _, fixed_query = http["requestUri"].partition("?")
    request = FuzzRequest(http["method"], template)
    if fixed_query:
        key, _, value = fixed_query.partition("=")
        request.query.append((key, value))
    shape = operation.input_shape
    body: dict[str, Any] = {}
    payload_member = shape.serialization.get("payload") if shape is not None else None
    for name, value in params.items():
        assert shape is not None
        member = shape.members[name]
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            greedy = "{" + wire + "+}" in request.path
            segment = _to_text(value).encode("utf-8", "surrogatepass")
            quoted = urllib.parse.quote(segment, safe="/" if greedy else "")
            request.path = request.path.replace("{" + wire + ("+}" if greedy else "}"), quoted)
        elif location == "querystring":
            for item in value if isinstance(value, list) else [value]:
                request.query.append((wire, _to_text(item)))
        elif location == "header":
            # What an HTTP client can send at all (h11 refuses control characters and
            # whitespace around a value).
            text = "".join(c for c in _to_text(value) if (c >= " " or c == "\t") and c != "\x7f")
            text = text.strip(" \t")
            request.headers[wire] = text.encode("utf-8", "surrogatepass").decode("latin-1")
        elif name == payload_member:
            request.body = (
                base64.b64decode(value)
                if _is_b64(value)
                else _to_text(value).encode("utf-8", "surrogatepass")
            )
        else:
            body[name] = value
    # Required path parameters the draw left out: an empty segment, as a careless client sends.
    for placeholder in ("{FunctionName}", "{Name}", "{CapacityProviderName}", "{Resource}"):
        request.path = request.path.replace(placeholder, "")
    request.path = _fill_placeholders(request.path)
    if body and payload_member is None:
        request.body = _to_json(body).encode("utf-8", "surrogatepass")
        request.headers.setdefault("Content-Type", "application/json")
    if mangle == 1 and request.body:
        request.body = request.body[: len(request.body) // 2]
    elif mangle == 2:
        request.body = bytes(range(256)) * 3
    return request


def _fill_placeholders(path: str) -> str:
    out = []
    for segment in path.split("/"):
        out.append("" if segment.startswith("{") and segment.endswith("}") else segment)
    return "/".join(out)


def _is_b64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        return False
    return True


def requests_for(operation_name: str) -> st.SearchStrategy[FuzzRequest]:
    operation = MODEL.operation_model(operation_name)
    shape = operation.input_shape
    params = _typed(shape, "", 0) if shape is not None else st.just({})
    mangle = st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2])  # mostly well-formed JSON
    return st.builds(lambda p, m: _build(operation, p, m), params, mangle)
