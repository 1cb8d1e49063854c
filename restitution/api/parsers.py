"""The API's JSON parser: DRF's, behind limits on size and nesting.

A request body of 100 000 nested arrays would make the JSON decoder (and anything walking the
result) recurse until RecursionError, a 500. Here the body's nesting is measured before it is
decoded, in one pass without recursion, and a body too deep or too large is a 400/413 problem
(RFC 9457), never a 500. It never decodes anything itself beyond what DRF's parser does.
"""

from __future__ import annotations

import io
import re

from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

#: The API's request bodies are small objects ({"datasets": [...], "from": ...}).
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32

# JSON strings (escapes included; an unterminated one runs to the end, so a string is never
# scanned twice) and the brackets outside them; nothing else matters to depth.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request body is larger than {MAX_BODY_BYTES} bytes."
    default_code = "body_too_large"


def nesting_depth(body: bytes, *, limit: int) -> int:
    """How deeply arrays and objects nest in a JSON text, counting up to limit + 1 at most."""
    depth = deepest = 0
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


class LimitedJSONParser(JSONParser):
    """DRF's JSONParser for bodies of at most MAX_BODY_BYTES nested at most MAX_DEPTH deep."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        # A nesting bomb shows in its first bytes: it is named as such (400) however long it is.
        if nesting_depth(body[:MAX_BODY_BYTES], limit=MAX_DEPTH) > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge()
        return super().parse(io.BytesIO(body), media_type, parser_context)
