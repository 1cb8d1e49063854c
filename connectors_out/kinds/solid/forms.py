"""The connect form of a Solid pod."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ...forms import DestinationForm


class SolidForm(DestinationForm):
    container = forms.URLField(label=_("Container in your pod"), assume_scheme="https",
                               help_text=_("Where to write, e.g. https://pod.example.org/me/restitution/"))
    issuer = forms.URLField(required=False, assume_scheme="https", label=_("Identity provider (if not the pod's)"))
    client_id = forms.CharField(max_length=300, label=_("Client credential id"))
    client_secret = forms.CharField(max_length=300, widget=forms.PasswordInput, label=_("Client credential secret"),
                                    help_text=_("Create a client credential for your WebID on your pod provider's "
                                                "account page; delete it there to cut access."))

    def connection(self):
        data = self.cleaned_data
        return ({"container": data["container"], "issuer": data.get("issuer") or ""},
                {"client_id": data["client_id"], "client_secret": data["client_secret"]})
