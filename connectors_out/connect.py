"""Connecting a destination, for every kind: credentials checked at the store before anything is
recorded, new credentials for a blocked destination, and the browser round trip of the kinds
whose cloud authorizes the gateway on its own page (state kept in the session, the cloud's
answer — a token, a code or a refusal — handled the same way for all of them).

Kinds call these from their `begin` step and their callbacks. Never logs credentials or tokens.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from restitution import consent
from restitution.models import Customer, Dataset

from . import registry
from .delivery import connect_destination, disconnect_destination, replace_credentials
from .http import DeliveryError, DestinationURLError
from .models import Destination

#: Session key of the connection waiting for the cloud's answer: {state, destination}.
SESSION_KEY = "connectors_out_pending"
#: What the customer reads when the cloud answers with an `error` (RFC 6749 §4.1.2.1, §4.2.2.1).
REFUSED = gettext_lazy("Your cloud did not authorize the gateway: nothing will be sent. You can connect it again "
                       "at any time.")


class ConnectError(ValueError):
    """The destination cannot be connected as asked (with a message for the customer)."""


def check(kind: str, settings_: dict[str, Any], credentials: dict[str, Any]) -> None:
    """Prove the credentials open the store; ConnectError with advice otherwise."""
    transport = registry.transport_class(kind)(settings=settings_, credentials=credentials)
    try:
        transport.check()
    except DeliveryError as exc:
        raise ConnectError(exc.connect_advice) from None
    finally:
        transport.close()


def connect_with_credentials(*, customer: Customer, kind: str, settings_: dict[str, Any],
                             credentials: dict[str, Any], datasets: list[Dataset], duration: str,
                             window_start: date | None = None, window_end: date | None = None,
                             request: HttpRequest | None = None) -> Destination:
    """Credentials the customer typed (or a login flow brought): check where to write and that
    they open the store, then record the connection and queue the first delivery."""
    kind_ = registry.kind(kind)
    try:
        settings_ = kind_.clean_settings(dict(settings_))
    except DestinationURLError as exc:
        raise ConnectError(str(exc)) from None
    check(kind, settings_, credentials)
    return connect_destination(customer=customer, kind=kind, label=kind_.describe(settings_), settings_=settings_,
                               credentials=credentials, datasets=datasets, duration=duration,
                               window_start=window_start, window_end=window_end, request=request)


def renew_credentials(*, destination: Destination, credentials: dict[str, str]) -> Destination:
    """New credentials for a connected destination whose kind allows it (after the old ones were
    revoked): checked against the store first; deliveries resume where they stopped."""
    fields = [field.name for field in registry.kind(destination.kind).renewable]
    if not fields or not destination.is_active():
        raise ConnectError(str(_("This destination cannot take new credentials: connect it again.")))
    if any(not credentials.get(name) for name in fields):
        raise ConnectError(str(_("Fill in every field.")))
    credentials = {name: credentials[name] for name in fields}
    check(destination.kind, destination.settings, credentials)
    replace_credentials(destination=destination, credentials=credentials)
    return destination


def customer_of(request: HttpRequest) -> Customer:
    """The logged-in customer; a 404 for any other account."""
    customer = consent.customer_of(request.user)
    if customer is None:
        raise Http404("not a customer account")
    return customer


def connected(request: HttpRequest) -> HttpResponse:
    messages.success(request, _("Connected: your data is on its way."))
    return redirect("connectors_out:destinations")


# --- Authorization at the cloud (remoteStorage, Cozy, …) ----------------------------------------

def await_authorization(request: HttpRequest, destination: Destination, url: str, *, state: str) -> HttpResponse:
    """A pending destination: remember it and its state in this browser's session, and send the
    browser to the cloud's authorization page."""
    request.session[SESSION_KEY] = {"state": state, "destination": str(destination.receipt_id)}
    return redirect(url)


def new_state() -> str:
    return secrets.token_urlsafe(24)


def _pending_destination(request: HttpRequest, customer: Customer) -> Destination | None:
    pending = request.session.get(SESSION_KEY) or {}
    destination = Destination.objects.filter(receipt_id=pending.get("destination"), customer=customer).first() \
        if pending.get("destination") else None
    if destination is None or not destination.pending_authorization or destination.revoked_at:
        return None
    return destination


def authorization_answer(request: HttpRequest, *, state: str, error: str,
                         finish: Callable[[Destination], Any]) -> HttpResponse:
    """The cloud sent the browser back. An `error` (the customer refused, or the cloud did) ends
    the pending connection with a message, whether or not a `state` came with it (armadietto
    sends `#error=access_denied` without one): the connection ended is the one this browser
    started, from its own session, and only if it is still waiting. Otherwise the state must be
    the one this browser was given, and `finish(destination)` completes the connection."""
    destination = _pending_destination(request, customer_of(request))
    expected = (request.session.get(SESSION_KEY) or {}).get("state")
    if error:
        if destination is None or (state and state != expected):
            messages.error(request, REFUSED)
            return redirect("connectors_out:destinations")
        return _end(request, destination, str(REFUSED), reason="authorization refused at the cloud")
    if destination is None or not state or state != expected:
        raise Http404("unknown or expired authorization")
    try:
        finish(destination)
    except ConnectError as exc:
        return _end(request, destination, str(exc), reason="authorization failed")
    request.session.pop(SESSION_KEY, None)
    return connected(request)


def _end(request: HttpRequest, destination: Destination, message: str, *, reason: str) -> HttpResponse:
    disconnect_destination(destination=destination, reason=reason, request=request)
    request.session.pop(SESSION_KEY, None)
    messages.error(request, message)
    return redirect("connectors_out:destinations")
