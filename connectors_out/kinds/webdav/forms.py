"""The connect form of a Nextcloud / WebDAV server."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ...forms import DestinationForm


class WebDavForm(DestinationForm):
    server = forms.URLField(label=_("Nextcloud or WebDAV server address"), assume_scheme="https",
                            help_text=_("For example https://cloud.example.org"))
    username = forms.CharField(max_length=150, required=False, label=_("User name"))
    app_password = forms.CharField(max_length=200, required=False, widget=forms.PasswordInput,
                                   label=_("App password"),
                                   help_text=_("Create one in your Nextcloud: Settings → Security → "
                                               "Devices & sessions. You can revoke it there at any time."))
    folder = forms.CharField(max_length=200, initial="Restitution", label=_("Folder"))

    #: Other ways to connect, as buttons of the connect page (name, label).
    alternatives = (("login_flow", _("Log in with Nextcloud instead (no app password to type)")),)

    def __init__(self, *args, login_flow: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.login_flow = login_flow

    def clean(self):
        cleaned = super().clean()
        if not self.login_flow:  # Nextcloud's login flow brings the user name and an app password
            for name in ("username", "app_password"):
                if not cleaned.get(name):
                    self.add_error(name, _("This field is required."))
        return cleaned

    def connection(self):
        data = self.cleaned_data
        return ({"server": data["server"], "username": data["username"], "folder": data["folder"].strip("/")},
                {"app_password": data["app_password"]})
