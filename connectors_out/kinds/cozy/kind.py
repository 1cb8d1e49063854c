"""A Cozy as a destination kind: the gateway registers itself at the customer's Cozy, the
customer authorizes it there, the code comes back to the callback."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy

from restitution import crypto

from ... import connect
from ...delivery import authorize_destination, connect_destination
from ...http import DeliveryError, DestinationURLError, check_destination_url
from .. import Kind
from .forms import CozyForm
from .transport import CozyTransport, authorization_url, exchange_code, register_client, scope_for


class Cozy(Kind):
    name = "cozy"
    label = gettext_lazy("Cozy")
    about = gettext_lazy("Cozy is a personal cloud that gathers your documents and data from many services in "
                         "one place. Create a free Cozy at cozy.io, or host your own; its address looks like "
                         "https://you.mycozy.cloud.")
    transport = CozyTransport
    form = CozyForm

    def describe(self, settings_: dict[str, Any]) -> str:
        return settings_["instance"]

    def begin(self, request: HttpRequest, form: Any, connection: dict[str, Any]) -> HttpResponse:
        redirect_uri = request.build_absolute_uri(reverse("connectors_out:cozy-callback"))
        try:
            instance = check_destination_url(form.cleaned_data["instance"])
            registration = register_client(instance=instance, redirect_uri=redirect_uri,
                                           client_name=f"{request.get_host()} — restitution")
        except DestinationURLError as exc:
            raise connect.ConnectError(str(exc)) from None
        except DeliveryError as exc:
            raise connect.ConnectError(exc.connect_advice) from None
        datasets = connection["datasets"]
        destination = connect_destination(kind=self.name, label=instance, settings_={"instance": instance},
                                          credentials=registration, pending_authorization=True, **connection)
        state = connect.new_state()
        url = authorization_url(instance=instance, client_id=registration["client_id"], redirect_uri=redirect_uri,
                                scope=scope_for([d.slug for d in datasets]), state=state)
        return connect.await_authorization(request, destination, url, state=state)

    def url_patterns(self) -> list[URLPattern]:
        return [path("callback/cozy/", callback, name="cozy-callback")]


KIND = Cozy()


def _finish(destination: Any, code: str) -> None:
    try:
        credentials = exchange_code(instance=destination.settings["instance"],
                                    credentials=crypto.decrypt_json(destination.credentials), code=code)
    except DeliveryError as exc:
        raise connect.ConnectError(exc.connect_advice) from None
    authorize_destination(destination=destination, credentials=credentials)


@login_required
def callback(request: HttpRequest) -> HttpResponse:
    code = request.GET.get("code", "")[:2000]
    # No code is a refusal too, whatever the Cozy said.
    error = request.GET.get("error", "")[:200] or ("" if code else "access_denied")
    return connect.authorization_answer(request, state=request.GET.get("state", "")[:200], error=error,
                                        finish=lambda destination: _finish(destination, code))
