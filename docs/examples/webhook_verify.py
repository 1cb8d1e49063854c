"""Verify a webhook from the restitution gateway (standard library only; copy it into your app).

The gateway signs each POST the Standard Webhooks way: HMAC-SHA256, keyed with your client's
secret (``whsec_`` + base64), over ``{webhook-id}.{webhook-timestamp}.{raw body}``, sent as
``webhook-signature: v1,<base64>``. Refuse a message whose timestamp is more than five minutes
away from your clock, and one whose ``webhook-id`` you have already accepted (replay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, MutableSet
from typing import Any

TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(ValueError):
    """The message is not from the gateway, was altered, is too old, or was already seen."""


def verify_webhook(*, secret: str, headers: Mapping[str, str], body: bytes, seen_ids: MutableSet[str],
                   now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> dict[str, Any]:
    """Return the event if it is authentic, fresh and new; raise WebhookVerificationError if not.

    `headers` must be looked up case-insensitively (lower-case keys here); `body` is the raw
    request body, before any JSON parsing; `seen_ids` remembers accepted ids for at least
    `tolerance` seconds (a set here; a database table or Redis set with expiry in production).
    """
    try:
        message_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"]
    except (KeyError, ValueError):
        raise WebhookVerificationError("missing or malformed webhook headers") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError("timestamp too old or in the future")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several space-separated signatures may come (during a secret rotation): one must match.
    if not any(hmac.compare_digest(expected, candidate.split(",", 1)[1])
               for candidate in signatures.split() if candidate.startswith("v1,")):
        raise WebhookVerificationError("bad signature")
    if message_id in seen_ids:
        raise WebhookVerificationError("already received (replay)")
    seen_ids.add(message_id)
    return json.loads(body)
