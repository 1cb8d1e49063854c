"""The connect form of a Cozy."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ...forms import DestinationForm


class CozyForm(DestinationForm):
    instance = forms.URLField(label=_("Your Cozy address"), assume_scheme="https",
                              help_text=_("Like https://name.mycozy.cloud; you will authorize the gateway there."))
