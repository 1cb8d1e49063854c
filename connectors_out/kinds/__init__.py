"""Destination kinds: one folder each (its transport, its form, its connect and finish steps, its
pages), and this small interface that the generic pages and the deliveries use.

A kind is found by name through `connectors_out.registry`; nothing outside its folder branches
on its name. Adding a kind is one folder and one line in the registry (`registry.KINDS`, or
`CONNECTORS_EXTRA_KINDS` for kinds that live outside the product, such as the tests' own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

from ..base import Transport


@dataclass(frozen=True)
class Renewable:
    """A credential a customer may replace on a connected destination (after revoking the old one)."""

    name: str
    label: Any
    secret: bool = True


class Kind:
    """What the gateway needs to know about one kind of personal cloud."""

    #: The name stored on destinations and used in URLs (`/account/destinations/connect/<name>/`).
    name: ClassVar[str]
    #: Shown to the customer (a lazy translation).
    label: ClassVar[Any]
    #: For the customer who has never heard of it: what this kind of cloud is and how to get one
    #: (a lazy translation; shown beside the connect link and on the connect page).
    about: ClassVar[Any] = ""
    #: Writes records and files to a store of this kind.
    transport: ClassVar[type[Transport]]
    #: The connect page's form: where to write (its own fields) plus what and for how long.
    form: ClassVar[type[forms.Form]]
    #: Credentials the customer can replace on the destinations page; empty: connect again instead.
    renewable: ClassVar[tuple[Renewable, ...]] = ()

    def make_form(self, request: HttpRequest, *, language: str) -> forms.Form:
        return self.form(request.POST or None, language=language)

    def clean_settings(self, settings_: dict[str, Any]) -> dict[str, Any]:
        """Where to write, checked (addresses: `http.check_destination_url`); raises
        DestinationURLError with a message for the customer."""
        return settings_

    def describe(self, settings_: dict[str, Any]) -> str:
        """The destination's label on the customer's page (an address, never a secret)."""
        return next(iter(settings_.values()), self.name) if settings_ else self.name

    def begin(self, request: HttpRequest, form: forms.Form, connection: dict[str, Any]) -> HttpResponse:
        """The connect form was valid: connect, or send the browser to the cloud to authorize.
        `connection` holds the customer, datasets, duration, period and request. The default is
        credentials typed in the form (`form.connection()` → settings, credentials), checked at
        the store before anything is recorded. Raises connect.ConnectError."""
        from .. import connect

        settings_, credentials = form.connection()  # type: ignore[attr-defined]
        connect.connect_with_credentials(kind=self.name, settings_=settings_, credentials=credentials, **connection)
        return connect.connected(request)

    def url_patterns(self) -> list[URLPattern]:
        """The kind's own pages (authorization callbacks, login flows), under /account/destinations/."""
        return []
