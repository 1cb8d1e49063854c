"""Forms of the customer pages: the consent choices."""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _
from oauth2_provider.forms import AllowForm

from ..models import Dataset, Grant
from ..oauth import SCOPE_PREFIX

DURATION_CHOICES = [
    (Grant.Duration.ONE_TIME, _("One time — access ends after the first complete transfer")),
    (Grant.Duration.MONTH_1, _("1 month")),
    (Grant.Duration.MONTHS_3, _("3 months")),
    (Grant.Duration.MONTHS_6, _("6 months")),
    (Grant.Duration.MONTHS_12, _("12 months (the longest possible)")),
]


#: The dates a period may name: wide enough for any real record, narrow enough that no date
#: arithmetic on them overflows (a period ending 9999-12-31 has no day after it).
EARLIEST_PERIOD_DATE = date(1900, 1, 1)
LATEST_PERIOD_DATE = date(2100, 12, 31)


class PeriodCheck:
    """For forms with `window_start` and `window_end`: each date within EARLIEST_PERIOD_DATE and
    LATEST_PERIOD_DATE, and the period must not end before it starts."""

    def clean(self):
        cleaned = super().clean()
        for name in ("window_start", "window_end"):
            day = cleaned.get(name)
            if day and not EARLIEST_PERIOD_DATE <= day <= LATEST_PERIOD_DATE:
                self.add_error(name, _("Choose a date between %(first)s and %(last)s.") % {
                    "first": EARLIEST_PERIOD_DATE.isoformat(), "last": LATEST_PERIOD_DATE.isoformat()})
                cleaned.pop(name, None)
        start, end = cleaned.get("window_start"), cleaned.get("window_end")
        if start and end and start > end:
            raise forms.ValidationError(_("The start of the period must be before its end."))
        return cleaned


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
