"""Connecting a destination from the dashboard: checking credentials the customer typed, and
the browser round trips of remoteStorage (implicit grant) and Cozy (authorization code).

Views call these and render; nothing here renders a page. Never logs credentials or tokens.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from restitution.models import Customer, Dataset

from . import cozy, remotestorage, webdav
from .base import DeliveryError, DestinationURLError, check_destination_url
from .delivery import authorize_destination, connect_destination, replace_credentials
from .models import Destination
from .registry import transport_class


class ConnectError(ValueError):
    """The destination cannot be connected as asked (with a message for the customer)."""


def _check(kind: str, settings_: dict[str, Any], credentials: dict[str, Any]) -> None:
    transport = transport_class(kind)(settings=settings_, credentials=credentials)
    try:
        transport.check()
    except DeliveryError as exc:
        raise ConnectError(exc.advice) from None
    finally:
        transport.close()


def connect_with_credentials(*, customer: Customer, kind: str, settings_: dict[str, Any],
                             credentials: dict[str, Any], datasets: list[Dataset], duration: str,
                             window_start: date | None = None, window_end: date | None = None,
                             request: HttpRequest | None = None) -> Destination:
    """WebDAV (app password) and Solid (client credentials): check that they open the store, then
    record the connection and queue the first delivery."""
    try:
        url_field = "server" if kind == "webdav" else "container"
        settings_[url_field] = check_destination_url(settings_[url_field])
        if kind == "solid":
            settings_["container"] += "/"
            if settings_.get("issuer"):
                settings_["issuer"] = check_destination_url(settings_["issuer"])
    except DestinationURLError as exc:
        raise ConnectError(str(exc)) from None
    _check(kind, settings_, credentials)
    label = settings_.get("container") or f"{settings_['username']} @ {settings_['server']}"
    return connect_destination(customer=customer, kind=kind, label=label, settings_=settings_,
                               credentials=credentials, datasets=datasets, duration=duration,
                               window_start=window_start, window_end=window_end, request=request)


#: The credentials fields a customer can replace on a connected destination, per kind.
RENEWABLE = {"webdav": ("app_password",), "solid": ("client_id", "client_secret")}


def renew_credentials(*, destination: Destination, credentials: dict[str, str]) -> Destination:
    """New credentials for a connected WebDAV or Solid destination (after the old ones were
    revoked): checked against the store first; deliveries resume where they stopped."""
    if destination.kind not in RENEWABLE or not destination.is_active():
        raise ConnectError(str(_("This destination cannot take new credentials: connect it again.")))
    fields = RENEWABLE[destination.kind]
    if any(not credentials.get(name) for name in fields):
        raise ConnectError(str(_("Fill in every field.")))
    credentials = {name: credentials[name] for name in fields}
    _check(destination.kind, destination.settings, credentials)
    replace_credentials(destination=destination, credentials=credentials)
    return destination


def begin_remotestorage(*, customer: Customer, address: str, datasets: list[Dataset], duration: str,
                        redirect_uri: str, window_start: date | None = None, window_end: date | None = None,
                        request: HttpRequest | None = None) -> tuple[Destination, str, str]:
    """WebFinger discovery, a pending connection; returns it, the state and where to send the browser."""
    try:
        storage = remotestorage.discover(address)
    except DestinationURLError as exc:
        raise ConnectError(str(exc)) from None
    destination = connect_destination(
        customer=customer, kind="remotestorage", label=storage.address, credentials={},
        settings_={"address": storage.address, "storage_root": storage.storage_root,
                   "category": remotestorage.CATEGORY},
        datasets=datasets, duration=duration, window_start=window_start, window_end=window_end,
        pending_authorization=True, request=request)
    state = secrets.token_urlsafe(24)
    return destination, state, remotestorage.authorization_url(storage=storage, redirect_uri=redirect_uri,
                                                               state=state)


def finish_remotestorage(*, destination: Destination, access_token: str) -> Destination:
    if not access_token:
        raise ConnectError("Your storage did not authorize the gateway.")
    credentials = {"access_token": access_token}
    _check("remotestorage", destination.settings, credentials)
    return authorize_destination(destination=destination, credentials=credentials)


def begin_cozy(*, customer: Customer, instance: str, datasets: list[Dataset], duration: str, redirect_uri: str,
               client_name: str, window_start: date | None = None, window_end: date | None = None,
               request: HttpRequest | None = None) -> tuple[Destination, str, str]:
    """Register the gateway at the customer's Cozy, record a pending connection; returns it, the
    state and where to send the browser."""
    try:
        instance = check_destination_url(instance)
        registration = cozy.register_client(instance=instance, redirect_uri=redirect_uri, client_name=client_name)
    except (DestinationURLError, DeliveryError) as exc:
        raise ConnectError(getattr(exc, "advice", None) or str(exc)) from None
    destination = connect_destination(
        customer=customer, kind="cozy", label=instance, settings_={"instance": instance},
        credentials=registration, datasets=datasets, duration=duration, window_start=window_start,
        window_end=window_end, pending_authorization=True, request=request)
    state = secrets.token_urlsafe(24)
    url = cozy.authorization_url(instance=instance, client_id=registration["client_id"], redirect_uri=redirect_uri,
                                 scope=cozy.scope_for([d.slug for d in datasets]), state=state)
    return destination, state, url


def finish_cozy(*, destination: Destination, code: str) -> Destination:
    from restitution import crypto

    try:
        credentials = cozy.exchange_code(instance=destination.settings["instance"],
                                         credentials=crypto.decrypt_json(destination.credentials), code=code)
    except DeliveryError as exc:
        raise ConnectError(exc.advice) from None
    return authorize_destination(destination=destination, credentials=credentials)


def begin_nextcloud_login(*, server: str) -> dict[str, str]:
    """Start Nextcloud's Login Flow v2: where to send the customer, and what to poll."""
    try:
        server = check_destination_url(server)
        return {**webdav.login_flow_start(server=server), "server": server}
    except DestinationURLError as exc:
        raise ConnectError(str(exc)) from None
    except DeliveryError as exc:
        raise ConnectError(exc.advice) from None


def finish_nextcloud_login(*, flow: dict[str, str], folder: str, customer: Customer, datasets: list[Dataset],
                           duration: str, window_start: date | None = None, window_end: date | None = None,
                           request: HttpRequest | None = None) -> Destination | None:
    """Poll the login flow once: None while the customer has not granted access yet; then the
    connection, with the app password Nextcloud made for the gateway."""
    try:
        answer = webdav.login_flow_poll(endpoint=flow["endpoint"], token=flow["token"])
    except DeliveryError as exc:
        raise ConnectError(exc.advice) from None
    if answer is None:
        return None
    return connect_with_credentials(
        customer=customer, kind="webdav", settings_={"server": flow["server"], "username": answer["loginName"],
                                                     "folder": folder},
        credentials={"app_password": answer["appPassword"]}, datasets=datasets, duration=duration,
        window_start=window_start, window_end=window_end, request=request)
