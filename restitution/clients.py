"""PIMS clients' lifecycle: what dynamic registration accepts (RFC 7591/7592), the operator's
review of later changes, registration access tokens, and deprovisioning.

It never renders a response and never deletes a client: a client's grants, consent receipts,
consent flows and access events outlive it, still naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    set_token_value,
)
from oauth2_provider.settings import oauth2_settings

from . import consent
from .models import Grant, PimsClient

#: Limits on one registration request (RFC 7591 §2 sets none; a registrant has no need of more).
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 1000
MAX_NAME_LENGTH = 200
MAX_SHOWN_URL_LENGTH = 200  # the URLField columns' own width

#: The only grant and response types a client may register (RFC 7591 §2.1): the gateway issues
#: authorization codes with PKCE and their refresh tokens, nothing else.
GRANT_TYPES = {"authorization_code", "refresh_token"}
RESPONSE_TYPES = {"code"}
AUTH_METHODS = {"none": PimsClient.CLIENT_PUBLIC, "client_secret_basic": PimsClient.CLIENT_CONFIDENTIAL,
                "client_secret_post": PimsClient.CLIENT_CONFIDENTIAL}

#: RFC 7591 metadata name → the PimsClient field that keeps it, for the URLs shown to customers.
SHOWN_URLS = {"client_uri": "homepage_url", "logo_uri": "logo_url", "policy_uri": "privacy_policy_url",
              "tos_uri": "terms_url"}

#: Fields an update may change only with the operator's approval once the client has been
#: reviewed: what the consent page shows, where codes go, how the client authenticates and
#: which grants it uses.
REVIEWED_FIELDS = ("name", "redirect_uris", *SHOWN_URLS.values(), "authorization_grant_type", "client_type")

#: Why the grants of a deleted client ended (the customer reads it in their history).
DELETED_REASON = "client deleted"


class RegistrationError(ValueError):
    """Client metadata the gateway refuses, with its RFC 7591 §3.2.2 error code."""

    def __init__(self, description: str, error: str = "invalid_client_metadata") -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class ClientMetadata:
    """Validated RFC 7591 client metadata, as PimsClient field values."""

    name: str
    redirect_uris: tuple[str, ...]
    client_type: str
    auth_method: str
    shown_urls: dict[str, str]

    def fields(self) -> dict[str, str]:
        return {"name": self.name, "redirect_uris": " ".join(self.redirect_uris), **self.shown_urls,
                "authorization_grant_type": PimsClient.GRANT_AUTHORIZATION_CODE, "client_type": self.client_type}


def max_body_bytes() -> int:
    return settings.GATEWAY_REGISTRATION_MAX_BYTES


def parse_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (RFC 7591 §3.1), or RegistrationError.

    Bodies above GATEWAY_REGISTRATION_MAX_BYTES are refused before parsing; a nesting too deep
    for the parser is bad metadata, not a server error.
    """
    if len(body) > max_body_bytes():
        raise RegistrationError(f"The request body is larger than {max_body_bytes()} bytes.")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise RegistrationError("The request body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise RegistrationError("The request body must be a JSON object.")
    return data


def _string(data: dict[str, Any], name: str, *, default: str = "", limit: int) -> str:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RegistrationError(f"{name} must be a string.")
    if len(value) > limit:
        raise RegistrationError(f"{name} is longer than {limit} characters.")
    return value


def _strings(data: dict[str, Any], name: str, *, default: list[str]) -> list[str]:
    value = data.get(name, default)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RegistrationError(f"{name} must be an array of strings.")
    return value


def read_metadata(data: dict[str, Any]) -> ClientMetadata:
    """Check RFC 7591 §2 client metadata against what the gateway accepts.

    Unknown members are ignored (RFC 7591 §2). Refused with `invalid_redirect_uri` or
    `invalid_client_metadata` (§3.2.2): anything but authorization_code (+ refresh_token) and
    the `code` response type, more than MAX_REDIRECT_URIS redirect URIs or longer than
    MAX_URI_LENGTH, a wrong JSON type, an oversized name or URL.
    """
    uris = data.get("redirect_uris")
    if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
        raise RegistrationError("redirect_uris must be an array of strings.", "invalid_redirect_uri")
    if not uris:
        raise RegistrationError("At least one redirect URI is required.", "invalid_redirect_uri")
    if len(uris) > MAX_REDIRECT_URIS:
        raise RegistrationError(f"At most {MAX_REDIRECT_URIS} redirect URIs.", "invalid_redirect_uri")
    for uri in uris:
        if not uri or len(uri) > MAX_URI_LENGTH or any(char.isspace() for char in uri):
            raise RegistrationError(f"Each redirect URI is 1 to {MAX_URI_LENGTH} characters, without spaces.",
                                    "invalid_redirect_uri")
    grant_types = _strings(data, "grant_types", default=["authorization_code"])
    if "authorization_code" not in grant_types or not set(grant_types) <= GRANT_TYPES:
        raise RegistrationError('grant_types may only be "authorization_code" and "refresh_token".')
    response_types = _strings(data, "response_types", default=["code"])
    if set(response_types) != RESPONSE_TYPES:
        raise RegistrationError('response_types may only be ["code"].')
    auth_method = _string(data, "token_endpoint_auth_method", default="client_secret_basic", limit=40)
    if auth_method not in AUTH_METHODS:
        raise RegistrationError(f"token_endpoint_auth_method must be one of {', '.join(sorted(AUTH_METHODS))}.")
    shown_urls = {}
    check_url = URLValidator(schemes=[s.lower() for s in oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES])
    for name, field in SHOWN_URLS.items():
        url = _string(data, name, limit=MAX_SHOWN_URL_LENGTH)
        if url:
            try:
                check_url(url)
            except ValidationError:
                raise RegistrationError(f"{name} must be an absolute URL the gateway allows.") from None
        shown_urls[field] = url
    return ClientMetadata(name=_string(data, "client_name", limit=MAX_NAME_LENGTH).strip(),
                          redirect_uris=tuple(uris), client_type=AUTH_METHODS[auth_method],
                          auth_method=auth_method, shown_urls=shown_urls)


def _full_clean(client: PimsClient) -> None:
    """DOT's own checks (redirect URI schemes, no wildcards), as RFC 7591 errors."""
    try:
        client.full_clean(exclude=["client_secret", "user"])
    except ValidationError as exc:
        errors = getattr(exc, "message_dict", {"": exc.messages})
        code = "invalid_redirect_uri" if "redirect_uris" in errors else "invalid_client_metadata"
        raise RegistrationError("; ".join(f"{field}: {' '.join(messages)}" if field and field != "__all__"
                                          else " ".join(messages) for field, messages in errors.items()),
                                code) from None


def register_client(*, metadata: ClientMetadata) -> tuple[PimsClient, str | None]:
    """A new client from RFC 7591 §3.1 metadata, pending the operator's approval; with its
    secret in clear (None for a public client), shown to the registrant once."""
    client = PimsClient(registration_source=PimsClient.RegistrationSource.DCR, registered_dynamically=True,
                        approval=PimsClient.Approval.PENDING, algorithm="", **metadata.fields())
    secret = client.client_secret if client.client_type == PimsClient.CLIENT_CONFIDENTIAL else None
    if secret is None:
        client.client_secret = ""
    _full_clean(client)
    client.save()
    return client, secret


def proposed_change(*, client: PimsClient, metadata: ClientMetadata) -> dict[str, str]:
    """The reviewed fields an update would change, with their proposed values."""
    return {field: value for field, value in metadata.fields().items() if getattr(client, field) != value}


@transaction.atomic
def update_registration(*, client: PimsClient, metadata: ClientMetadata) -> PimsClient:
    """RFC 7592 §2.2 update, under the operator's review.

    A client still in the approval queue changes at once (the operator reviews it as it is).
    Any other client keeps its approved values in force: what it asked for is kept in
    `proposed_changes` until the operator applies or discards it, so a registrant cannot rename
    an approved client or send codes to a new redirect URI on its own. Asking again for the
    values in force withdraws the proposal. Switching between public and confidential is
    refused (`invalid_client_metadata`): it would change how the client proves who it is.
    """
    client = PimsClient.objects.select_for_update().get(pk=client.pk)
    if metadata.client_type != client.client_type:
        raise RegistrationError("token_endpoint_auth_method cannot switch between a public client "
                                '("none") and a confidential one; register a new client instead.')
    candidate = PimsClient.objects.get(pk=client.pk)
    for field, value in metadata.fields().items():
        setattr(candidate, field, value)
    _full_clean(candidate)
    change = proposed_change(client=client, metadata=metadata)
    if client.approval == PimsClient.Approval.PENDING:
        for field, value in change.items():
            setattr(client, field, value)
        client.proposed_changes, client.proposed_at = {}, None
    elif change:
        client.proposed_changes, client.proposed_at = change, timezone.now()
    else:
        client.proposed_changes, client.proposed_at = {}, None
    client.save()
    return client


@transaction.atomic
def apply_proposed_changes(*, client: PimsClient) -> bool:
    """The operator approves the change a registrant asked for: it is in force from now on."""
    client = PimsClient.objects.select_for_update().get(pk=client.pk)
    if not client.proposed_changes or client.approval == PimsClient.Approval.DEPROVISIONED:
        return False
    for field, value in client.proposed_changes.items():
        if field in REVIEWED_FIELDS:
            setattr(client, field, value)
    client.proposed_changes, client.proposed_at = {}, None
    client.save()
    return True


def discard_proposed_changes(*, client: PimsClient) -> bool:
    """The operator refuses the change a registrant asked for: the approved values stay."""
    return bool(PimsClient.objects.filter(pk=client.pk).exclude(proposed_changes={})
                .update(proposed_changes={}, proposed_at=None))


def review_rows(client: PimsClient) -> list[tuple[str, str, str]]:
    """(field, value in force, proposed value) of each field a pending change touches."""
    return [(field, str(getattr(client, field)), str(value)) for field, value in client.proposed_changes.items()]


def metadata_of(client: PimsClient) -> dict[str, Any]:
    """The client's metadata in force, in RFC 7591 §2 names (for §3.2.1 and RFC 7592 §3)."""
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "redirect_uris": client.redirect_uris.split(),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none" if client.client_type == PimsClient.CLIENT_PUBLIC
        else "client_secret_basic",
    }
    if client.name:
        data["client_name"] = client.name
    for name, field in SHOWN_URLS.items():
        if getattr(client, field):
            data[name] = getattr(client, field)
    if client.client_type == PimsClient.CLIENT_CONFIDENTIAL:
        data["client_secret_expires_at"] = 0  # RFC 7591 §3.2.1: 0 = never expires
    if client.proposed_changes:
        names = {"name": "client_name", **{field: name for name, field in SHOWN_URLS.items()}}
        data["changes_awaiting_approval"] = {
            names.get(field, field): value.split() if field == "redirect_uris" else value
            for field, value in client.proposed_changes.items()}
    return data


def issue_registration_token(*, client: PimsClient) -> str:
    """A new registration access token (RFC 7591 §3.2.1), stored hashed, expiring after
    OAUTH_REGISTRATION_TOKEN_SECONDS; its value in clear, returned once."""
    AccessToken = get_access_token_model()
    raw = generate_client_secret()
    token = AccessToken(application=client, user=None, scope=oauth2_settings.DCR_REGISTRATION_SCOPE,
                        expires=timezone.now() + timedelta(
                            seconds=oauth2_settings.DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS))
    set_token_value(token, raw)
    token.save()
    return raw


@transaction.atomic
def rotate_registration_token(*, client: PimsClient, presented) -> str:
    """RFC 7592 §3: a new registration access token in each read or update response; the one
    presented stops working at once."""
    get_access_token_model().objects.filter(pk=presented.pk).delete()
    return issue_registration_token(client=client)


def end_client_tokens(*, client: PimsClient) -> None:
    """Every credential issued to the client dies: access tokens (registration tokens
    included), refresh tokens (revoked, kept for replay detection), pending codes, ID tokens."""
    get_access_token_model().objects.filter(application=client).delete()
    get_refresh_token_model().objects.filter(application=client, revoked__isnull=True).update(
        revoked=timezone.now())
    get_grant_model().objects.filter(application=client).delete()
    get_id_token_model().objects.filter(application=client).delete()


@transaction.atomic
def deprovision_client(*, client: PimsClient, reason: str = DELETED_REASON,
                       request: HttpRequest | None = None, staff=None) -> bool:
    """Delete a client in every way that matters, keeping its history (RFC 7592 §2.3).

    Its grants in force end (revoked with `reason`, logged for each customer), every token and
    pending code dies, its secret and redirect URIs are wiped and it can never be used again;
    the row stays, so grants, receipts, consent flows and access events still name it.
    """
    client = PimsClient.objects.select_for_update().get(pk=client.pk)
    if client.approval == PimsClient.Approval.DEPROVISIONED:
        return False
    now = timezone.now()
    for grant in Grant.objects.filter(client=client, revoked_at__isnull=True, ended_at__isnull=True,
                                      expires_at__gt=now).select_related("customer", "client"):
        consent.revoke_grant(grant=grant, reason=reason, request=request, staff=staff)
    end_client_tokens(client=client)
    client.approval = PimsClient.Approval.DEPROVISIONED
    client.deprovisioned_at = now
    client.client_secret = generate_client_secret()  # hashed on save, never shown: nobody knows it
    client.redirect_uris = ""
    client.post_logout_redirect_uris = ""
    client.allowed_origins = ""
    client.proposed_changes, client.proposed_at = {}, None
    client.save()
    client.allowed_datasets.clear()
    return True
