"""How function URL requests and answers map to and from Lambda's payload format 2.0 (pure
functions of ``api.function_url``; the end-to-end behaviour is in
``tests/e2e/test_function_urls.py``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from corral.api.function_url import cors_headers, http_answer, url_event, url_target
from corral.core import models

CONFIG = models.FunctionUrlConfig("f", "$LATEST", "a" * 32, "NONE", "BUFFERED", 0.0, 0.0)


def scope(path: bytes, headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "PUT",
        "path": path.decode(),
        "raw_path": path,
        "query_string": query,
        "headers": headers,
        "http_version": "2",
        "client": ("10.0.0.9", 5555),
    }


def test_a_url_is_found_by_its_path_or_its_host_name() -> None:
    assert url_target(scope(b"/lambda-url/abc", [])) == ("abc", "/")
    assert url_target(scope(b"/lambda-url/abc/x/y%20z", [])) == ("abc", "/x/y%20z")
    host = [(b"host", b"abc.lambda-url.us-east-1.localhost:9000")]
    assert url_target(scope(b"/orders", host)) == ("abc", "/orders")
    assert url_target(scope(b"/2015-03-31/functions", [(b"host", b"127.0.0.1")])) is None
    assert url_target({"type": "websocket", "path": "/lambda-url/abc"}) is None


def test_the_event_of_a_request() -> None:
    headers = [
        (b"Content-Type", b"application/vnd.api+json"),
        (b"x-twice", b"a"),
        (b"X-Twice", b"b"),
        (b"cookie", b"k=v;  other=2"),
    ]
    event = url_event(
        scope(b"/lambda-url/x/p", headers, b"a=1&a=2&b"),
        CONFIG,
        "/p",
        b'{"x": 1}',
        "rid",
        account_id="123456789012",
        region="eu-west-1",
        caller=None,
        now_s=0.0,
    )
    assert event["headers"]["x-twice"] == "a,b"
    assert event["cookies"] == ["k=v", "other=2"] and event["headers"]["cookie"] == "k=v;  other=2"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    # Without a Host header, AWS's own domain name for the URL.
    assert context["domainName"] == f"{'a' * 32}.lambda-url.eu-west-1"
    assert context["http"]["protocol"] == "HTTP/2" and context["http"]["sourceIp"] == "10.0.0.9"
    assert context["time"] == "01/Jan/1970:00:00:00 +0000" and context["timeEpoch"] == 0
    binary = url_event(
        scope(b"/", []),
        CONFIG,
        "/",
        b"\x00\x01",
        "r",
        account_id="1",
        region="r",
        caller={"accessKey": "K"},
        now_s=0.0,
    )
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\x00\x01"
    assert binary["requestContext"]["authorizer"] == {"iam": {"accessKey": "K"}}
    assert "queryStringParameters" not in binary and "cookies" not in binary


def test_answers_map_back_as_aws_maps_them() -> None:
    plain = [(b"content-type", b"application/json")]
    assert http_answer(b'"text"') == (200, plain, b"text")
    assert http_answer(b'{"a": [1, true]}') == (200, plain, b'{"a":[1,true]}')
    assert http_answer(b"") == (200, plain, b"")
    assert http_answer(b"not json") == (200, plain, b"not json")
    assert http_answer(b'{"statusCode": "418"}')[0] == 418
    status, headers, body = http_answer(
        json.dumps({"statusCode": 204, "headers": {"X-A": 1}}).encode()
    )
    assert (status, headers, body) == (204, [(b"x-a", b"1")], b"")
    status, headers, body = http_answer(json.dumps({"statusCode": 200, "body": {"k": 1}}).encode())
    assert body == b'{"k": 1}' and (b"content-type", b"application/json") in headers
    for bad in ({"statusCode": True}, {"statusCode": 99}, {"statusCode": 200, "headers": ["x"]}):
        with pytest.raises(ValueError):
            http_answer(json.dumps(bad).encode())


def test_cors_headers_follow_the_configuration() -> None:
    anyone = {"AllowOrigins": ["*"], "ExposeHeaders": ["x-e"]}
    assert cors_headers(anyone, "https://a", preflight=False) == [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-expose-headers", b"x-e"),
    ]
    # With credentials, the origin is echoed (a wildcard is not allowed with them).
    echoed = cors_headers({**anyone, "AllowCredentials": True}, "https://a", preflight=True)
    assert (b"access-control-allow-origin", b"https://a") in echoed
    assert (b"access-control-allow-credentials", b"true") in echoed
    assert cors_headers({"AllowOrigins": ["https://b"]}, "https://a", preflight=True) == []
    assert cors_headers(anyone, None, preflight=False) == []
    assert cors_headers(None, "https://a", preflight=False) == []
