"""Forms of the destination pages: what to send, for how long, and where."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from restitution.models import Dataset, Grant
from restitution.periods import DURATION_CHOICES, PeriodCheck


class DestinationForm(PeriodCheck, forms.Form):
    datasets = forms.ModelMultipleChoiceField(queryset=Dataset.objects.none(), widget=forms.CheckboxSelectMultiple,
                                              label=_("Data to send"))
    window_start = forms.DateField(required=False, label=_("Send data from"),
                                   widget=forms.DateInput(attrs={"type": "date"}))
    window_end = forms.DateField(required=False, label=_("Send data until"),
                                 widget=forms.DateInput(attrs={"type": "date"}))
    duration = forms.ChoiceField(choices=DURATION_CHOICES, initial=Grant.Duration.MONTHS_3,
                                 widget=forms.RadioSelect, label=_("For how long"))

    def __init__(self, *args, language: str = "en", **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["datasets"]
        field.queryset = Dataset.objects.filter(is_published=True).order_by("slug")
        field.label_from_instance = lambda d: d.title_fr if language.startswith("fr") else d.title_en
        # Where first (the kind's own fields), then what and for how long.
        common = ["datasets", "window_start", "window_end", "duration"]
        self.order_fields([name for name in self.fields if name not in common] + common)


class WebDavForm(DestinationForm):
    server = forms.URLField(label=_("Nextcloud or WebDAV server address"), assume_scheme="https",
                            help_text=_("For example https://cloud.example.org"))
    username = forms.CharField(max_length=150, required=False, label=_("User name"))
    app_password = forms.CharField(max_length=200, required=False, widget=forms.PasswordInput,
                                   label=_("App password"),
                                   help_text=_("Create one in your Nextcloud: Settings → Security → "
                                               "Devices & sessions. You can revoke it there at any time."))
    folder = forms.CharField(max_length=200, initial="Restitution", label=_("Folder"))

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


class RemoteStorageForm(DestinationForm):
    address = forms.CharField(max_length=300, label=_("Your remoteStorage address"),
                              help_text=_("Like name@example.com; you will authorize the gateway there."))


class CozyForm(DestinationForm):
    instance = forms.URLField(label=_("Your Cozy address"), assume_scheme="https",
                              help_text=_("Like https://name.mycozy.cloud; you will authorize the gateway there."))


FORMS = {"webdav": WebDavForm, "solid": SolidForm, "remotestorage": RemoteStorageForm, "cozy": CozyForm}


class TokenForm(forms.Form):
    """What the remoteStorage callback page posts back from the URL fragment."""

    access_token = forms.CharField(required=False, max_length=2000)
    state = forms.CharField(max_length=200)
    error = forms.CharField(required=False, max_length=200)
