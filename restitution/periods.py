"""What a consent may say about time: the durations offered and the period of the data shared.

Used by every form that creates a consent (the authorization page, the destination pages), so
the rules are the same wherever a customer chooses.
"""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Grant

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
