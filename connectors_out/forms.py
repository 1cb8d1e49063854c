"""The part of every connect form that is not about the cloud: what to send, for how long.
Each kind's form (connectors_out/kinds/<kind>/forms.py) adds where to write."""

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
