"""Dynamic client registration (RFC 7591, `/o/register/`) and management (RFC 7592,
`/o/register/<client_id>/`): django-oauth-toolkit's views, subclassed.

Thin: each method parses, calls one function of `restitution.clients` and renders the RFC 7591
shapes. Never a 500 for bad input, never a response cached (RFC 7591 §3.2.1).
"""

from __future__ import annotations

import math

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from oauth2_provider.views import DynamicClientRegistrationManagementView, DynamicClientRegistrationView
from oauth2_provider.views.dynamic_client_registration import _check_permissions

from .. import clients
from ..models import PimsClient
from .throttling import PerAddressRegistrationThrottle, check_all


def _error(error: str, description: str, status: int = 400) -> JsonResponse:
    """RFC 7591 §3.2.2 error response."""
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _client_response(request: HttpRequest, client: PimsClient, token: str, *, status: int = 200,
                     secret: str | None = None) -> JsonResponse:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the metadata in force and a fresh registration token."""
    data = clients.metadata_of(client)
    if secret is not None:
        data["client_secret"] = secret
    data["registration_access_token"] = token
    data["registration_client_uri"] = request.build_absolute_uri(
        reverse("oauth2_provider:dcr-register-management", kwargs={"client_id": client.client_id}))
    return JsonResponse(data, status=status)


def _too_large(request: HttpRequest) -> JsonResponse | None:
    """A declared body above the cap is refused before it is read."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > clients.max_body_bytes():
        return _error("invalid_client_metadata", f"The request body is larger than {clients.max_body_bytes()} bytes.")
    return None


def _read(request: HttpRequest, client_id: str | None = None) -> clients.ClientMetadata | JsonResponse:
    refused = _too_large(request)
    if refused is not None:
        return refused
    try:
        data = clients.parse_body(request.body)
        if client_id is not None and data.get("client_id", client_id) != client_id:
            # RFC 7592 §2.2: an update names the client it updates.
            return _error("invalid_client_metadata", "client_id does not match the registration.")
        return clients.read_metadata(data)
    except clients.RegistrationError as exc:
        return _error(exc.error, exc.description)


class _NeverCached:
    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        # RFC 7591 §3.2.1 (and RFC 6749 §5.1): responses carrying credentials are never cached.
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response


class RegistrationView(_NeverCached, DynamicClientRegistrationView):
    """RFC 7591 §3: open registration, bounded per client address and in size; the new client
    waits for the operator's approval."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not _check_permissions(request):
            return _error("access_denied", "Authentication required to register a client", status=401)
        waits = check_all([PerAddressRegistrationThrottle()], request, self)
        if waits:
            # RFC 6585 §4: 429 and when to come back.
            response = _error("too_many_requests", "Too many registrations from this address; retry later.",
                              status=429)
            response["Retry-After"] = str(max(1, math.ceil(max(waits))))
            return response
        metadata = _read(request)
        if isinstance(metadata, HttpResponse):
            return metadata
        try:
            client, secret = clients.register_client(metadata=metadata)
        except clients.RegistrationError as exc:
            return _error(exc.error, exc.description)
        token = clients.issue_registration_token(client=client)
        return _client_response(request, client, token, status=201, secret=secret)


class RegistrationManagementView(_NeverCached, DynamicClientRegistrationManagementView):
    """RFC 7592: read, update (under the operator's review) and delete (deprovision) a client
    registered here, with a registration access token that expires and rotates."""

    def get(self, request: HttpRequest, client_id: str, *args, **kwargs) -> HttpResponse:
        auth = self._authenticate_registration_request(request, client_id)
        if isinstance(auth, HttpResponse):
            return auth
        token = clients.rotate_registration_token(client=auth.application, presented=auth.registration_token)
        return _client_response(request, auth.application, token)

    def put(self, request: HttpRequest, client_id: str, *args, **kwargs) -> HttpResponse:
        auth = self._authenticate_registration_request(request, client_id)
        if isinstance(auth, HttpResponse):
            return auth
        metadata = _read(request, client_id)
        if isinstance(metadata, HttpResponse):
            return metadata
        try:
            client = clients.update_registration(client=auth.application, metadata=metadata)
        except clients.RegistrationError as exc:
            return _error(exc.error, exc.description)
        token = clients.rotate_registration_token(client=client, presented=auth.registration_token)
        return _client_response(request, client, token)

    def delete(self, request: HttpRequest, client_id: str, *args, **kwargs) -> HttpResponse:
        auth = self._authenticate_registration_request(request, client_id)
        if isinstance(auth, HttpResponse):
            return auth
        clients.deprovision_client(client=auth.application, reason=clients.DELETED_REASON, request=request)
        return HttpResponse(status=204)
