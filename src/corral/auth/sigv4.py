"""AWS Signature Version 4, verified: what AWS's front end checks before Lambda sees a call.

Pure: the caller hands over the request as it arrived (method, the path and query exactly
as on the wire, the headers) and, once ``parse`` named the key, that key's secret and the
body's SHA-256. Both ways of signing are accepted:

* header: ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``
  with ``X-Amz-Date`` (or ``Date``);
* query string (presigned URLs): ``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``,
  ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature``.

The canonical request follows the published algorithm as SDKs implement it for every
service but S3: the path is normalised (dot segments and empty segments removed) and
percent-encoded once more; query keys and values are encoded with the unreserved set only
and sorted; signed headers are lower-cased, trimmed, their inner spaces collapsed, repeated
headers joined by commas.

Errors are AWS's (``errors.Unauthenticated`` with the error name): no signature at all ->
``MissingAuthenticationTokenException``; a malformed one -> ``IncompleteSignatureException``;
a wrong scope, a date outside the window or a mismatch -> ``InvalidSignatureException``;
session tokens (Corral issues none) -> ``UnrecognizedClientException``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import hashlib
import hmac
import urllib.parse
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from corral.core import errors

__all__ = [
    "ALGORITHM",
    "MAX_EXPIRES_S",
    "SKEW_S",
    "Claim",
    "Request",
    "canonical_request",
    "check_claim",
    "parse",
    "presign",
    "signature",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
SKEW_S = 300  # AWS: "Signature expired: ... (... - 5 min.)"
MAX_EXPIRES_S = 7 * 24 * 3600  # a presigned URL lives at most a week
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_TERMINATOR = "aws4_request"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_UNRESERVED = "-_.~"


@dataclass(frozen=True)
class Request:  # not slotted: ``header`` caches a dict
    """A request as it arrived: ``path`` and ``query`` exactly as on the wire (still
    percent-encoded), header names lower-cased, repeated headers repeated."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]

    @functools.cached_property
    def _by_name(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, value in self.headers:
            found[name] = f"{found[name]},{value}" if name in found else value
        return found

    def header(self, name: str) -> str | None:
        return self._by_name.get(name)


@dataclass(frozen=True)
class Claim:
    """What a signature claims: who signed, when, for which scope, over which headers."""

    access_key_id: str
    amz_date: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str
    presigned: bool
    expires_s: int = 0

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def _missing() -> errors.Unauthenticated:
    return errors.Unauthenticated(
        "MissingAuthenticationTokenException", "Missing Authentication Token"
    )


def _incomplete(message: str) -> errors.Unauthenticated:
    return errors.Unauthenticated("IncompleteSignatureException", message)


def _invalid(message: str) -> errors.Unauthenticated:
    return errors.Unauthenticated("InvalidSignatureException", message)


def parse(request: Request) -> Claim:
    """The claim of a signed request.

    Raises:
        errors.Unauthenticated: unsigned, malformed, or carrying a session token.
    """
    authorization = request.header("authorization")
    query = dict(_query_pairs(request.query)) if "X-Amz-" in request.query else {}
    if authorization is None and "X-Amz-Algorithm" not in query:
        raise _missing()
    if request.header("x-amz-security-token") is not None or "X-Amz-Security-Token" in query:
        raise errors.Unauthenticated(
            "UnrecognizedClientException",
            "The security token included in the request is invalid. (Corral issues no "
            "session tokens: sign with a Corral key alone, without AWS_SESSION_TOKEN.)",
        )
    if authorization is not None:
        return _parse_header(request, authorization)
    return _parse_query(query)


def _parse_header(request: Request, authorization: str) -> Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(
            f"Unsupported AWS 'algorithm': {algorithm[:40]!r}; Corral accepts {ALGORITHM} "
            "(Signature Version 4)."
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    lacking = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if lacking:
        raise _incomplete(
            " ".join(f"Authorization header requires '{k}' parameter." for k in lacking)
        )
    amz_date = request.header("x-amz-date")
    if amz_date is None:
        amz_date = _from_http_date(request.header("date"))
    return _claim(
        fields["Credential"], amz_date, fields["SignedHeaders"], fields["Signature"], False, 0
    )


def _parse_query(query: dict[str, str]) -> Claim:
    names = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature")
    lacking = [k for k in (*names, "X-Amz-Expires") if not query.get(k)]
    if lacking:
        raise _incomplete(
            " ".join(f"AWS query-string parameters must include '{k}'." for k in lacking)
            + " Re-examine the query-string parameters."
        )
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise _incomplete(
            f"X-Amz-Algorithm only supports {ALGORITHM}, not {query['X-Amz-Algorithm'][:40]!r}."
        )
    expires = query["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_EXPIRES_S:
        raise _incomplete(
            f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES_S}, "
            f"not {expires[:20]!r}."
        )
    return _claim(
        query["X-Amz-Credential"],
        query["X-Amz-Date"],
        query["X-Amz-SignedHeaders"],
        query["X-Amz-Signature"],
        True,
        int(expires),
    )


def _claim(
    credential: str, amz_date: str, signed: str, sig: str, presigned: bool, expires_s: int
) -> Claim:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise _incomplete(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got {credential[:100]!r}."
        )
    _parse_amz_date(amz_date)
    headers = tuple(signed.split(";"))
    if "host" not in headers:
        raise _incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    return Claim(
        access_key_id=parts[0],
        amz_date=amz_date,
        date=parts[1],
        region=parts[2],
        service=parts[3],
        terminator=parts[4],
        signed_headers=headers,
        signature=sig,
        presigned=presigned,
        expires_s=expires_s,
    )


@functools.lru_cache(maxsize=1024)  # a busy client signs many requests in one second
def _parse_amz_date(value: str) -> float:
    """Seconds since the epoch of ``YYYYMMDDTHHMMSSZ``."""
    try:
        if len(value) != 16 or value[8] != "T" or value[15] != "Z":
            raise ValueError(value)
        fields = (value[0:4], value[4:6], value[6:8], value[9:11], value[11:13], value[13:15])
        if not all(f.isdigit() and f.isascii() for f in fields):
            raise ValueError(value)
        year, month, day, hour, minute, second = (int(f) for f in fields)
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp()
    except ValueError:
        raise _incomplete(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", "
            f"not {value[:40]!r}."
        ) from None


def _from_http_date(value: str | None) -> str:
    if value is None:
        raise _incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise _incomplete(f"The Date header is not an HTTP date: {value[:40]!r}.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime(_AMZ_DATE)


def check_claim(
    claim: Claim, now_s: float, regions: Collection[str], service: str = "lambda"
) -> None:
    """The scope names this service and one of ``regions`` (``*`` allows any), and the
    request is inside its time window: 5 minutes either way, or until a presigned URL
    expires.

    Raises:
        errors.Unauthenticated: InvalidSignatureException, saying which check failed.
    """
    if claim.date != claim.amz_date[:8]:
        raise _invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{claim.date}' != '{claim.amz_date[:8]}', from '{claim.amz_date}'."
        )
    if "*" not in regions and claim.region not in regions:
        allowed = ", ".join(sorted(regions))
        raise _invalid(
            f"Credential should be scoped to a valid region, not '{claim.region}'. "
            f"This Corral serves {allowed} (CORRAL_SIGNING_REGIONS)."
        )
    if claim.service != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'. ")
    if claim.terminator != _TERMINATOR:
        raise _invalid(
            f"Credential should be scoped with a valid terminator: '{_TERMINATOR}', not "
            f"'{claim.terminator}'. "
        )
    signed_at = _parse_amz_date(claim.amz_date)
    if claim.presigned and now_s > signed_at + claim.expires_s:
        raise _invalid(
            f"Signature expired: {_amz(signed_at + claim.expires_s)} is now earlier than "
            f"{_amz(now_s)} (the presigned URL was valid for {claim.expires_s} s from "
            f"{claim.amz_date})."
        )
    if not claim.presigned and signed_at < now_s - SKEW_S:
        raise _invalid(
            f"Signature expired: {claim.amz_date} is now earlier than "
            f"{_amz(now_s - SKEW_S)} ({_amz(now_s)} - 5 min.)"
        )
    if signed_at > now_s + SKEW_S:
        raise _invalid(
            f"Signature not yet current: {claim.amz_date} is still later than "
            f"{_amz(now_s + SKEW_S)} ({_amz(now_s)} + 5 min.)"
        )


def _amz(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime(_AMZ_DATE)


def verify(request: Request, claim: Claim, secret: str, body_sha256: str) -> None:
    """The signature is the one ``secret`` makes for this request.

    Raises:
        errors.Unauthenticated: InvalidSignatureException.
    """
    declared = request.header("x-amz-content-sha256")
    # The body is always signed: Corral speaks plain HTTP, where an unsigned body could be
    # changed on the way. (A presigned URL may leave out an empty body, as S3's do.)
    if declared == UNSIGNED_PAYLOAD and body_sha256 != _EMPTY_SHA256:
        raise _invalid(
            "x-amz-content-sha256: UNSIGNED-PAYLOAD is not accepted: sign the body (Corral "
            "speaks plain HTTP, where an unsigned body could be changed on the way)."
        )
    if declared is not None and declared != UNSIGNED_PAYLOAD and declared != body_sha256:
        raise _invalid(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    payloads = [declared if declared is not None else body_sha256]
    if claim.presigned and declared is None and body_sha256 == _EMPTY_SHA256:
        payloads.append(UNSIGNED_PAYLOAD)  # S3-style presigned URLs sign no payload
    # The query as the specification canonicalises it, and as botocore does (the pairs as
    # on the wire): the two differ only for query strings no SDK would send, like "a=%%".
    canonical_query = _canonical_query(request.query, claim.presigned)
    for payload in payloads:
        canonical = canonical_request(request, claim, payload, canonical_query)
        if hmac.compare_digest(signature(secret, claim, canonical), claim.signature):
            return
    raw = _raw_query(request.query, claim.presigned)
    if raw != canonical_query:
        for payload in payloads:
            canonical = canonical_request(request, claim, payload, raw)
            if hmac.compare_digest(signature(secret, claim, canonical), claim.signature):
                return
    raise _invalid(
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details."
    )


def presign(
    path: str,
    host: str,
    access_key_id: str,
    secret: str,
    region: str,
    now_s: float,
    expires_s: int,
    service: str = "lambda",
) -> str:
    """The query string that makes ``GET`` of ``path`` (as on the wire) on ``host`` a
    presigned request of this key, valid ``expires_s`` seconds from ``now_s``."""
    amz_date = _amz(now_s)
    claim = Claim(
        access_key_id=access_key_id,
        amz_date=amz_date,
        date=amz_date[:8],
        region=region,
        service=service,
        terminator=_TERMINATOR,
        signed_headers=("host",),
        signature="",
        presigned=True,
        expires_s=expires_s,
    )
    query = urllib.parse.urlencode(
        {
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": f"{access_key_id}/{claim.scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires_s),
            "X-Amz-SignedHeaders": "host",
        },
        quote_via=urllib.parse.quote,
        safe=_UNRESERVED,
    )
    request = Request("GET", path, query, (("host", host),))
    sig = signature(secret, claim, canonical_request(request, claim, UNSIGNED_PAYLOAD))
    return f"{query}&X-Amz-Signature={sig}"


def canonical_request(
    request: Request, claim: Claim, payload_sha256: str, query: str | None = None
) -> str:
    """The canonical form of ``request`` that ``claim``'s signature covers (``query``: the
    canonical query string, if already made)."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        if name in claim.signed_headers:
            headers.setdefault(name, []).append(" ".join(value.split()))
    lines = "".join(f"{name}:{','.join(headers.get(name, []))}\n" for name in claim.signed_headers)
    return "\n".join(
        (
            request.method.upper(),
            _canonical_path(request.path),
            _canonical_query(request.query, claim.presigned) if query is None else query,
            lines,
            ";".join(claim.signed_headers),
            payload_sha256,
        )
    )


def signature(secret: str, claim: Claim, canonical: str) -> str:
    """The hex signature of a canonical request under ``claim``'s scope."""
    to_sign = "\n".join(
        (ALGORITHM, claim.amz_date, claim.scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = _signing_key(secret, claim.date, claim.region, claim.service, claim.terminator)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str, terminator: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@functools.lru_cache(maxsize=4096)  # the same few paths come again and again
def _canonical_path(path: str) -> str:
    """Dot segments and empty segments removed, then percent-encoded (once more)."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    normal = ("/" if path.startswith("/") else "") + "/".join(kept)
    if path.endswith("/") and kept:
        normal += "/"
    return urllib.parse.quote(normal or "/", safe="/~")


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((urllib.parse.unquote(key), urllib.parse.unquote(value)))
    return pairs


def _raw_query(query: str, presigned: bool) -> str:
    pairs = sorted(
        tuple(item.partition("=")[::2])
        for item in query.split("&")
        if item and not (presigned and item.startswith("X-Amz-Signature="))
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


@functools.lru_cache(maxsize=4096)
def _canonical_query(query: str, presigned: bool) -> str:
    encoded = sorted(
        (urllib.parse.quote(k, safe=_UNRESERVED), urllib.parse.quote(v, safe=_UNRESERVED))
        for k, v in _query_pairs(query)
        if not (presigned and k == "X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in encoded)
