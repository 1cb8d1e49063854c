"""The connect form of a remoteStorage, and what its callback page posts back."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ...forms import DestinationForm


class RemoteStorageForm(DestinationForm):
    address = forms.CharField(max_length=300, label=_("Your remoteStorage address"),
                              help_text=_("Like name@example.com; you will authorize the gateway there."))


class TokenForm(forms.Form):
    """What the remoteStorage callback page posts back from the URL fragment."""

    access_token = forms.CharField(required=False, max_length=2000)
    state = forms.CharField(required=False, max_length=200)
    error = forms.CharField(required=False, max_length=200)
