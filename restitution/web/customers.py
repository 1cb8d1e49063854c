"""The customer behind a page request (every customer page starts here)."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from .. import consent
from ..models import Customer


def signed_in_customer(request: HttpRequest) -> Customer:
    """The signed-in user's customer; a 404 for an account that is not a customer's (staff)."""
    customer = consent.customer_of(request.user)
    if customer is None:
        raise Http404("not a customer account")
    return customer
