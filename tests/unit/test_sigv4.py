"""SigV4 verification against what botocore (the reference signer) produces."""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
from unittest import mock

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.auth import sigv4
from corral.core import errors

KEY = ("AKCREXAMPLEEXAMPLE12", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC).timestamp()
REGIONS = frozenset({"us-east-1"})


def _signed(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    key: tuple[str, str] = KEY,
    region: str = "us-east-1",
    service: str = "lambda",
    when: float = NOW,
    presign: int = 0,
) -> sigv4.Request:
    """A request as botocore signs it at ``when``, as the server would receive it."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    credentials = Credentials(*key)
    signer = (
        SigV4QueryAuth(credentials, service, region, expires=presign)
        if presign
        else SigV4Auth(credentials, service, region)
    )
    moment = dt.datetime.fromtimestamp(when, dt.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(request)
    parts = urllib.parse.urlsplit(str(request.url))
    sent = [(k.lower(), v) for k, v in request.headers.items()]
    sent.append(("host", parts.netloc))
    return sigv4.Request(method, parts.path, parts.query, sent)


def _verify(
    request: sigv4.Request, body: bytes = b"", secret: str = KEY[1], now: float = NOW
) -> None:
    claim = sigv4.parse(request)
    sigv4.check_claim(claim, now, REGIONS)
    sigv4.verify(request, claim, secret, hashlib.sha256(body).hexdigest())


def _error(call: object, *args: object, **kwargs: object) -> tuple[str, str]:
    with pytest.raises(errors.Unauthenticated) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.lambda_error, caught.value.message


URLS = [
    "http://127.0.0.1:9000/2015-03-31/functions/",
    "http://127.0.0.1:9000/2015-03-31/functions/f/invocations?Qualifier=%24LATEST",
    "http://127.0.0.1:9000/2015-03-31/functions/"
    "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations",
    "http://localhost:9000/2015-03-31/functions/?MaxItems=5&Marker=a%20b%2Bc&FunctionVersion=ALL",
    "http://127.0.0.1:9000/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af"
    "?tagKeys=b&tagKeys=a",
]


@pytest.mark.parametrize("url", URLS)
def test_botocore_signatures_verify(url: str) -> None:
    body = b'{"a": "\xc3\xa9"}'
    _verify(_signed("POST", url, body, {"Content-Type": "application/json"}), body)
    _verify(_signed("GET", url))


@pytest.mark.parametrize("url", URLS)
def test_presigned_urls_verify_until_they_expire(url: str) -> None:
    request = _signed("GET", url, presign=600)
    _verify(request, now=NOW + 599)
    name, message = _error(_verify, request, now=NOW + 601)
    assert name == "InvalidSignatureException" and message.startswith("Signature expired")


def test_our_own_presigned_urls_verify() -> None:
    path = "/corral/v1/code/" + "a" * 64 + ".zip"
    query = sigv4.presign(path, "127.0.0.1:9000", *KEY, "us-east-1", NOW, 600)
    request = sigv4.Request("GET", path, query, [("host", "127.0.0.1:9000")])
    _verify(request, now=NOW + 10)
    moved = sigv4.Request("GET", path, query, [("host", "evil:9000")])
    assert _error(_verify, moved, now=NOW)[0] == "InvalidSignatureException"


def test_a_wrong_secret_a_changed_body_or_a_changed_header_is_refused() -> None:
    url = URLS[1]
    request = _signed("POST", url, b"{}", {"X-Amz-Invocation-Type": "Event"})
    assert _error(_verify, request, b"{}", secret="nope")[0] == "InvalidSignatureException"
    assert _error(_verify, request, b'{"x":1}')[0] == "InvalidSignatureException"
    changed = sigv4.Request(
        request.method,
        request.path,
        request.query,
        [(k, "RequestResponse" if k == "x-amz-invocation-type" else v) for k, v in request.headers],
    )
    name, message = _error(_verify, changed, b"{}")
    assert name == "InvalidSignatureException"
    assert message.startswith("The request signature we calculated does not match")
    other_path = sigv4.Request("POST", "/2015-03-31/functions/g/invocations", "", request.headers)
    assert _error(_verify, other_path, b"{}")[0] == "InvalidSignatureException"


def test_no_signature_at_all_is_a_missing_token() -> None:
    request = sigv4.Request("GET", "/2015-03-31/functions/", "", [("host", "h")])
    assert _error(sigv4.parse, request) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        ("AWS4-HMAC-SHA512 Credential=a/b/c/d/e", "Unsupported AWS 'algorithm'"),
        ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab", "requires 'Credential'"),
        (
            "AWS4-HMAC-SHA256 Credential=k/20261128/us-east-1/lambda/aws4_request, Signature=ab",
            "requires 'SignedHeaders'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=k/20261128/lambda/aws4_request, SignedHeaders=host, "
            "Signature=ab",
            "exactly 5 slash-delimited",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=k/20261128/us-east-1/lambda/aws4_request, "
            "SignedHeaders=x-amz-date, Signature=ab",
            "'Host' must be a 'SignedHeader'",
        ),
        ("Bearer abc", "Unsupported AWS 'algorithm'"),
    ],
)
def test_malformed_authorization_headers_are_incomplete(authorization: str, expected: str) -> None:
    request = sigv4.Request(
        "GET", "/", "", [("authorization", authorization), ("x-amz-date", "20261128T120000Z")]
    )
    name, message = _error(sigv4.parse, request)
    assert name == "IncompleteSignatureException" and expected in message


def test_a_date_is_required_and_must_be_iso8601() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=k/20261128/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host, Signature=ab"
    )
    without = sigv4.Request("GET", "/", "", [("authorization", header)])
    assert "'X-Amz-Date' or a 'Date'" in _error(sigv4.parse, without)[1]
    bad = sigv4.Request("GET", "/", "", [("authorization", header), ("x-amz-date", "yesterday")])
    assert "ISO8601 Long Format" in _error(sigv4.parse, bad)[1]
    http_date = sigv4.Request(
        "GET", "/", "", [("authorization", header), ("date", "Sat, 28 Nov 2026 12:00:00 GMT")]
    )
    assert sigv4.parse(http_date).amz_date == "20261128T120000Z"


def test_the_time_window_is_five_minutes_either_way() -> None:
    request = _signed("GET", URLS[0])
    _verify(request, now=NOW + 299)
    name, message = _error(_verify, request, now=NOW + 301)
    assert name == "InvalidSignatureException"
    assert message == (
        "Signature expired: 20261128T120000Z is now earlier than 20261128T120001Z "
        "(20261128T120501Z - 5 min.)"
    )
    name, message = _error(_verify, request, now=NOW - 301)
    assert name == "InvalidSignatureException"
    assert message.startswith("Signature not yet current: 20261128T120000Z is still later than")


def test_the_scope_must_name_lambda_a_served_region_and_the_signing_day() -> None:
    wrong_region = sigv4.parse(_signed("GET", URLS[0], region="eu-west-9"))
    message = _error(sigv4.check_claim, wrong_region, NOW, REGIONS)[1]
    assert message.startswith("Credential should be scoped to a valid region, not 'eu-west-9'.")
    sigv4.check_claim(wrong_region, NOW, frozenset({"us-east-1", "eu-west-9"}))
    sigv4.check_claim(wrong_region, NOW, frozenset({"*"}))
    wrong_service = sigv4.parse(_signed("GET", URLS[0], service="s3"))
    assert "correct service: 'lambda'" in _error(sigv4.check_claim, wrong_service, NOW, REGIONS)[1]


def test_session_tokens_are_refused_as_aws_refuses_unknown_ones() -> None:
    request = _signed("GET", URLS[0], headers={"X-Amz-Security-Token": "abc"})
    name, message = _error(sigv4.parse, request)
    assert name == "UnrecognizedClientException" and "AWS_SESSION_TOKEN" in message


def test_presigned_urls_need_every_parameter_and_a_sane_expiry() -> None:
    lacking = sigv4.Request("GET", "/", "X-Amz-Algorithm=AWS4-HMAC-SHA256", [("host", "h")])
    name, message = _error(sigv4.parse, lacking)
    assert name == "IncompleteSignatureException" and "'X-Amz-Credential'" in message
    request = _signed("GET", URLS[0], presign=600)
    too_long = request.query.replace("X-Amz-Expires=600", "X-Amz-Expires=604801")
    bad = sigv4.Request("GET", request.path, too_long, request.headers)
    assert "X-Amz-Expires must be" in _error(sigv4.parse, bad)[1]


@settings(max_examples=200, deadline=None)
@given(
    segments=st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=1),
        min_size=1,
        max_size=4,
    ),
    params=st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=10)), max_size=4),
    body=st.binary(max_size=64),
)
def test_any_path_query_and_body_botocore_signs_verifies(
    segments: list[str], params: list[tuple[str, str]], body: bytes
) -> None:
    path = "/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="-_.~")
    url = f"http://127.0.0.1:9000{path}" + (f"?{query}" if query else "")
    _verify(_signed("PUT", url, body), body)


def test_the_body_is_always_signed() -> None:
    """Plain HTTP: an unsigned payload could be swapped on the way, so it is refused."""
    body = b'{"a": 1}'
    request = _signed("POST", URLS[1], body, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    name, message = _error(_verify, request, body)
    assert name == "InvalidSignatureException" and "UNSIGNED-PAYLOAD is not accepted" in message
    # A declared hash must be the body's.
    declared = _signed("POST", URLS[1], body, {"X-Amz-Content-SHA256": "0" * 64})
    assert "does not match what was computed" in _error(_verify, declared, body)[1]
