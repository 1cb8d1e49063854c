"""remoteStorage as a destination kind: the customer's address → WebFinger → the storage's
authorization page → back to the callback page, whose script posts what the URL fragment holds
(the token, or the storage's refusal) to the gateway."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy

from ... import connect
from ...delivery import authorize_destination, connect_destination
from ...http import DestinationURLError
from .. import Kind
from .forms import RemoteStorageForm, TokenForm
from .transport import CATEGORY, RemoteStorageTransport, authorization_url, discover


class RemoteStorage(Kind):
    name = "remotestorage"
    label = gettext_lazy("remoteStorage")
    about = gettext_lazy("remoteStorage is an open protocol for a personal storage space that apps write to "
                         "with your permission, under an address like you@example.org. Get an account from a "
                         "remoteStorage provider listed on remotestorage.io, or run your own server.")
    transport = RemoteStorageTransport
    form = RemoteStorageForm

    def describe(self, settings_: dict[str, Any]) -> str:
        return settings_["address"]

    def begin(self, request: HttpRequest, form: Any, connection: dict[str, Any]) -> HttpResponse:
        try:
            storage = discover(form.cleaned_data["address"])
        except DestinationURLError as exc:
            raise connect.ConnectError(str(exc)) from None
        destination = connect_destination(
            kind=self.name, label=storage.address, credentials={}, pending_authorization=True,
            settings_={"address": storage.address, "storage_root": storage.storage_root, "category": CATEGORY},
            **connection)
        state = connect.new_state()
        url = authorization_url(storage=storage, state=state,
                                redirect_uri=request.build_absolute_uri(reverse("connectors_out:remotestorage-callback")))
        return connect.await_authorization(request, destination, url, state=state)

    def url_patterns(self) -> list[URLPattern]:
        return [path("callback/remotestorage/", callback, name="remotestorage-callback")]


KIND = RemoteStorage()


def _finish(destination: Any, access_token: str) -> None:
    if not access_token:
        raise connect.ConnectError(str(connect.REFUSED))
    credentials = {"access_token": access_token}
    connect.check(KIND.name, destination.settings, credentials)
    authorize_destination(destination=destination, credentials=credentials)


@login_required
def callback(request: HttpRequest) -> HttpResponse:
    """The answer comes in the URL fragment, which only the browser sees: a small script posts it."""
    if request.method != "POST":
        return render(request, "connectors_out/remotestorage/callback.html")
    form = TokenForm(request.POST)
    if not form.is_valid():
        raise Http404("bad callback")
    data = form.cleaned_data
    return connect.authorization_answer(request, state=data["state"], error=data["error"],
                                        finish=lambda destination: _finish(destination, data["access_token"]))
