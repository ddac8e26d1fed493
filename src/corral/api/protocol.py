"""The HTTP protocol Corral serves with: uvicorn's httptools protocol, except that a request
too malformed to parse (bad header bytes, a broken request line) is answered as Lambda
answers everything else, with an error name and a JSON message, not uvicorn's plain text.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from corral.runtime.invocation import new_request_id

__all__ = ["LambdaHttpProtocol"]

# Lambda's model: "The request body could not be parsed as JSON, or a request header is
# invalid."
_ERROR = "InvalidRequestContentException"


class LambdaHttpProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {"Type": "User", "message": f"The HTTP request could not be parsed: {msg}"}
        ).encode()
        head = [
            b"HTTP/1.1 400 Bad Request\r\n",
            b"content-type: application/json\r\n",
            b"x-amzn-ErrorType: " + _ERROR.encode() + b"\r\n",
            b"x-amzn-RequestId: " + new_request_id().encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
