"""Forms of the customer pages: the consent choices."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _
from oauth2_provider.forms import AllowForm

from ..models import Dataset, Grant
from ..oauth import SCOPE_PREFIX
from ..periods import DURATION_CHOICES, PeriodCheck


class ConsentForm(PeriodCheck, AllowForm):
    """DOT's authorization form, plus what the customer decides: datasets, period, duration."""

    datasets = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                         label=_("Data to share"))
    window_start = forms.DateField(required=False, label=_("Share data from"),
                                   widget=forms.DateInput(attrs={"type": "date"}))
    window_end = forms.DateField(required=False, label=_("Share data until"),
                                 widget=forms.DateInput(attrs={"type": "date"}))
    duration = forms.ChoiceField(choices=DURATION_CHOICES, initial=Grant.Duration.MONTHS_3,
                                 widget=forms.RadioSelect, label=_("For how long"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        requested = (self.data.get("scope") if self.is_bound else self.initial.get("scope")) or ""
        slugs = [s[len(SCOPE_PREFIX):] for s in requested.split() if s.startswith(SCOPE_PREFIX)]
        self.requested_datasets = list(Dataset.objects.filter(slug__in=slugs, is_published=True)
                                       .order_by("slug"))
        self.fields["datasets"].choices = [(d.slug, d.title_en) for d in self.requested_datasets]
        if not self.is_bound:
            self.initial.setdefault("datasets", [d.slug for d in self.requested_datasets])

    def chosen_datasets(self) -> list[Dataset]:
        chosen = set(self.cleaned_data.get("datasets") or [])
        return [d for d in self.requested_datasets if d.slug in chosen]
