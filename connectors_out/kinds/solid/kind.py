"""A Solid pod as a destination kind: a container and client credentials typed in the form."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy

from ...http import check_destination_url
from .. import Kind, Renewable
from .forms import SolidForm
from .transport import SolidTransport


class Solid(Kind):
    name = "solid"
    label = gettext_lazy("Solid pod")
    about = gettext_lazy("A Solid pod is a personal online data store built on open web standards: you decide "
                         "which apps may read or write it. Get one free from a pod provider listed on "
                         "solidproject.org, or run your own Solid server.")
    transport = SolidTransport
    form = SolidForm
    renewable = (Renewable("client_id", gettext_lazy("Client credential id"), secret=False),
                 Renewable("client_secret", gettext_lazy("Client credential secret")))

    def clean_settings(self, settings_: dict[str, Any]) -> dict[str, Any]:
        cleaned = {**settings_, "container": check_destination_url(settings_["container"]) + "/"}
        if settings_.get("issuer"):
            cleaned["issuer"] = check_destination_url(settings_["issuer"])
        return cleaned

    def describe(self, settings_: dict[str, Any]) -> str:
        return settings_["container"]


KIND = Solid()
