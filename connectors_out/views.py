"""Customer pages of the push side: connect and disconnect destinations, see deliveries and
what to do about failures. Nothing here knows a kind by name: each kind's form, connect step
and own pages (authorization callbacks, login flows) are in connectors_out/kinds/<kind>/.

Every query is filtered by the logged-in customer: another customer's destination is a 404.
Views are thin: they call connect.py and delivery.py and render.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from restitution.models import Customer

from . import connect as connecting
from . import delivery, registry
from .models import Delivery, Destination


def _customer(request: HttpRequest) -> Customer:
    return connecting.customer_of(request)


def _mine(request: HttpRequest, receipt_id) -> Destination:
    return get_object_or_404(Destination, receipt_id=receipt_id, customer=_customer(request))


@login_required
def destinations(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    kinds = {k.name: k for k in registry.kinds()}
    rows = []
    for destination in (Destination.objects.filter(customer=customer).prefetch_related("datasets")):
        recent = list(destination.deliveries.prefetch_related("attempt_rows")[:5])
        status = destination.status()
        connected = status == "active"
        if connected and destination.blocked_at is not None:
            status = "blocked"  # connected, but nothing is sent until the customer acts
        rows.append({"destination": destination, "status": status, "connected": connected, "deliveries": recent,
                     "kind": kinds.get(destination.kind),
                     "failure": next((d for d in recent[:1] if d.status == Delivery.Status.FAILED), None)})
    return render(request, "connectors_out/destinations.html", {
        "customer": customer, "rows": rows, "kinds": list(kinds.values()), "language": get_language() or "en"})


@login_required
def connect(request: HttpRequest, kind: str) -> HttpResponse:
    customer = _customer(request)
    try:
        kind_ = registry.kind(kind)
    except ValueError:
        raise Http404("unknown kind") from None
    form = kind_.make_form(request, language=get_language() or "en")
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        connection = {"customer": customer, "datasets": list(data["datasets"]), "duration": data["duration"],
                      "window_start": data.get("window_start"), "window_end": data.get("window_end"),
                      "request": request}
        try:
            return kind_.begin(request, form, connection)
        except connecting.ConnectError as exc:
            form.add_error(None, str(exc))
    return render(request, "connectors_out/connect.html", {"form": form, "kind": kind_})


@login_required
@require_POST
def disconnect(request: HttpRequest, receipt_id) -> HttpResponse:
    destination = _mine(request, receipt_id)
    delivery.disconnect_destination(destination=destination, request=request)
    messages.success(request, _("Disconnected: nothing more will be sent to %(label)s. What was already sent "
                                "stays there — delete it there if you wish.") % {"label": destination.label})
    return redirect("connectors_out:destinations")


@login_required
@require_POST
def retry(request: HttpRequest, receipt_id) -> HttpResponse:
    destination = _mine(request, receipt_id)
    queued = delivery.queue_delivery(destination=destination, trigger="retry")
    if queued is None:
        messages.error(request, _("This destination is no longer connected."))
        return redirect("connectors_out:destinations")
    queued.refresh_from_db()  # where no worker waits (embedded shape), the attempt already ran
    if queued.status == Delivery.Status.SUCCEEDED:
        messages.success(request, _("Delivered: your cloud is up to date."))
    elif queued.status == Delivery.Status.FAILED:
        messages.error(request, _("Tried again, and it failed: %(advice)s") % {"advice": queued.advice})
    elif queued.retry_at is not None:
        messages.warning(request, _("Tried again, and your cloud could not be reached: the gateway will try "
                                    "again later by itself."))
    else:
        messages.info(request, _("Sending again…"))
    return redirect("connectors_out:destinations")


@login_required
@require_POST
def renew_credentials(request: HttpRequest, receipt_id) -> HttpResponse:
    destination = _mine(request, receipt_id)
    try:
        fields = [field.name for field in registry.kind(destination.kind).renewable]
        connecting.renew_credentials(destination=destination,
                                     credentials={name: request.POST.get(name, "")[:300] for name in fields})
    except connecting.ConnectError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("New credentials saved: deliveries resume where they stopped."))
    return redirect("connectors_out:destinations")
