"""Nextcloud / WebDAV as a destination kind: an app password typed in the form, or Nextcloud's
Login Flow v2 (the customer grants access in their Nextcloud, “Finish” polls once)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from restitution import crypto
from restitution.models import Dataset

from ... import connect
from ...http import DeliveryError, DestinationURLError, check_destination_url
from .. import Kind, Renewable
from .forms import WebDavForm
from .transport import WebDavTransport, login_flow_poll, login_flow_start

#: Session key of a login flow under way (the poll token encrypted).
LOGIN_FLOW_KEY = "connectors_out_nextcloud_login"


class WebDav(Kind):
    name = "webdav"
    label = gettext_lazy("Nextcloud / WebDAV")
    about = gettext_lazy("Nextcloud is a file cloud you can host yourself or rent from a provider (many "
                         "offer a free account); most file clouds that speak WebDAV work too. Sign up at a "
                         "Nextcloud provider, or use the one your household or association already runs.")
    transport = WebDavTransport
    form = WebDavForm
    renewable = (Renewable("app_password", gettext_lazy("App password")),)

    def make_form(self, request: HttpRequest, *, language: str) -> WebDavForm:
        return WebDavForm(request.POST or None, language=language, login_flow="login_flow" in request.POST)

    def clean_settings(self, settings_: dict[str, Any]) -> dict[str, Any]:
        return {**settings_, "server": check_destination_url(settings_["server"])}

    def describe(self, settings_: dict[str, Any]) -> str:
        return f"{settings_['username']} @ {settings_['server']}"

    def begin(self, request: HttpRequest, form: Any, connection: dict[str, Any]) -> HttpResponse:
        if not form.login_flow:
            return super().begin(request, form, connection)
        data = form.cleaned_data
        try:
            server = check_destination_url(data["server"])
            flow = {**login_flow_start(server=server), "server": server}
        except DestinationURLError as exc:
            raise connect.ConnectError(str(exc)) from None
        except DeliveryError as exc:
            raise connect.ConnectError(exc.connect_advice) from None
        request.session[LOGIN_FLOW_KEY] = {
            "flow": crypto.encrypt_json(flow), "folder": data["folder"].strip("/"),
            "datasets": [d.pk for d in data["datasets"]], "duration": data["duration"],
            "window_start": data["window_start"].isoformat() if data.get("window_start") else None,
            "window_end": data["window_end"].isoformat() if data.get("window_end") else None}
        return redirect("connectors_out:nextcloud-login")

    def url_patterns(self) -> list[URLPattern]:
        return [path("nextcloud-login/", nextcloud_login, name="nextcloud-login")]


KIND = WebDav()


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@login_required
def nextcloud_login(request: HttpRequest) -> HttpResponse:
    """Login Flow v2: the customer logs in to their Nextcloud (another tab), then comes back and
    presses “Finish”, which polls the flow once."""
    customer = connect.customer_of(request)
    pending = request.session.get(LOGIN_FLOW_KEY)
    if not pending:
        return redirect("connectors_out:destinations")
    flow = crypto.decrypt_json(pending["flow"])
    if request.method == "POST":
        try:
            answer = login_flow_poll(endpoint=flow["endpoint"], token=flow["token"])
            if answer is None:
                messages.info(request, _("Not yet: grant access in your Nextcloud first, then press “Finish” again."))
            else:
                connect.connect_with_credentials(
                    customer=customer, kind=KIND.name,
                    settings_={"server": flow["server"], "username": answer["loginName"], "folder": pending["folder"]},
                    credentials={"app_password": answer["appPassword"]},
                    datasets=list(Dataset.objects.filter(pk__in=pending["datasets"], is_published=True)),
                    duration=pending["duration"], window_start=_day(pending["window_start"]),
                    window_end=_day(pending["window_end"]), request=request)
                request.session.pop(LOGIN_FLOW_KEY, None)
                return connect.connected(request)
        except DeliveryError as exc:
            request.session.pop(LOGIN_FLOW_KEY, None)
            messages.error(request, exc.connect_advice)
            return redirect("connectors_out:destinations")
        except connect.ConnectError as exc:
            request.session.pop(LOGIN_FLOW_KEY, None)
            messages.error(request, str(exc))
            return redirect("connectors_out:destinations")
    return render(request, "connectors_out/webdav/nextcloud_login.html", {"login_url": flow["login"],
                                                                           "server": flow["server"]})
