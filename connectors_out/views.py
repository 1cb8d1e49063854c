"""Customer pages of the push side: connect and disconnect destinations, see deliveries and
what to do about failures, and the authorization callbacks of remoteStorage and Cozy.

Every query is filtered by the logged-in customer: another customer's destination is a 404.
Views are thin: they call connect.py and delivery.py and render.
"""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from restitution import consent, crypto
from restitution.models import Customer, Dataset

from . import connect as connecting
from . import delivery
from .forms import FORMS, TokenForm
from .models import Delivery, Destination

SESSION_KEY = "connectors_out_pending"
NEXTCLOUD_KEY = "connectors_out_nextcloud_login"


def _customer(request: HttpRequest) -> Customer:
    customer = consent.customer_of(request.user)
    if customer is None:
        raise Http404("not a customer account")
    return customer


def _mine(request: HttpRequest, receipt_id) -> Destination:
    return get_object_or_404(Destination, receipt_id=receipt_id, customer=_customer(request))


@login_required
def destinations(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    rows = []
    for destination in (Destination.objects.filter(customer=customer).prefetch_related("datasets")):
        recent = list(destination.deliveries.prefetch_related("attempt_rows")[:5])
        rows.append({"destination": destination, "status": destination.status(), "deliveries": recent,
                     "renewable": connecting.RENEWABLE.get(destination.kind, ()),
                     "failure": next((d for d in recent[:1] if d.status == Delivery.Status.FAILED), None)})
    return render(request, "connectors_out/destinations.html", {
        "customer": customer, "rows": rows, "kinds": Destination.Kind.choices, "language": get_language() or "en"})


@login_required
def connect(request: HttpRequest, kind: str) -> HttpResponse:
    customer = _customer(request)
    if kind not in FORMS:
        raise Http404("unknown kind")
    form_class = FORMS[kind]
    language = get_language() or "en"
    login_flow = kind == "webdav" and "login_flow" in request.POST
    form = form_class(request.POST or None, language=language, **({"login_flow": True} if login_flow else {}))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        common = {"customer": customer, "datasets": list(data["datasets"]), "duration": data["duration"],
                  "window_start": data.get("window_start"), "window_end": data.get("window_end"),
                  "request": request}
        try:
            if login_flow:
                flow = connecting.begin_nextcloud_login(server=data["server"])
                request.session[NEXTCLOUD_KEY] = {
                    "flow": crypto.encrypt_json(flow), "folder": data["folder"].strip("/"),
                    "datasets": [d.pk for d in data["datasets"]], "duration": data["duration"],
                    "window_start": data["window_start"].isoformat() if data.get("window_start") else None,
                    "window_end": data["window_end"].isoformat() if data.get("window_end") else None}
                return redirect("connectors_out:nextcloud-login")
            if kind in ("webdav", "solid"):
                settings_, credentials = form.connection()
                connecting.connect_with_credentials(kind=kind, settings_=settings_, credentials=credentials, **common)
                messages.success(request, _("Connected: your data is on its way."))
                return redirect("connectors_out:destinations")
            callback = request.build_absolute_uri(reverse(f"connectors_out:{kind}-callback"))
            if kind == "remotestorage":
                destination, state, url = connecting.begin_remotestorage(
                    address=data["address"], redirect_uri=callback, **common)
            else:
                destination, state, url = connecting.begin_cozy(
                    instance=data["instance"], redirect_uri=callback,
                    client_name=f"{request.get_host()} — restitution", **common)
            request.session[SESSION_KEY] = {"state": state, "destination": str(destination.receipt_id)}
            return redirect(url)
        except connecting.ConnectError as exc:
            form.add_error(None, str(exc))
    return render(request, "connectors_out/connect.html", {
        "form": form, "kind": kind, "kind_label": dict(Destination.Kind.choices)[kind]})


def _pending(request: HttpRequest, state: str) -> Destination:
    """The destination this browser started to connect, if `state` is the one it was given."""
    pending = request.session.get(SESSION_KEY) or {}
    if not state or pending.get("state") != state:
        raise Http404("unknown or expired authorization")
    destination = _mine(request, pending["destination"])
    if not destination.pending_authorization or destination.revoked_at:
        raise Http404("not waiting for an authorization")
    return destination


def _finished(request: HttpRequest, destination: Destination, finish, **kwargs) -> HttpResponse:
    try:
        finish(destination=destination, **kwargs)
    except connecting.ConnectError as exc:
        delivery.disconnect_destination(destination=destination, reason="authorization failed", request=request)
        messages.error(request, str(exc))
        return redirect("connectors_out:destinations")
    request.session.pop(SESSION_KEY, None)
    messages.success(request, _("Connected: your data is on its way."))
    return redirect("connectors_out:destinations")


def _refused(*, destination: Destination) -> None:
    raise connecting.ConnectError(_("Your cloud did not authorize the gateway: nothing will be sent."))


@login_required
def cozy_callback(request: HttpRequest) -> HttpResponse:
    destination = _pending(request, request.GET.get("state", ""))
    if not request.GET.get("code"):  # the customer refused, or the Cozy said no
        return _finished(request, destination, _refused)
    return _finished(request, destination, connecting.finish_cozy, code=request.GET["code"])


@login_required
def remotestorage_callback(request: HttpRequest) -> HttpResponse:
    """The token comes in the URL fragment, which only the browser sees: a small script posts it."""
    if request.method != "POST":
        return render(request, "connectors_out/remotestorage_callback.html")
    form = TokenForm(request.POST)
    if not form.is_valid():
        raise Http404("bad callback")
    destination = _pending(request, form.cleaned_data["state"])
    return _finished(request, destination, connecting.finish_remotestorage,
                     access_token=form.cleaned_data["access_token"])


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
    if delivery.queue_delivery(destination=destination, trigger="retry") is None:
        messages.error(request, _("This destination is no longer connected."))
    else:
        messages.info(request, _("Sending again…"))
    return redirect("connectors_out:destinations")


@login_required
@require_POST
def renew_credentials(request: HttpRequest, receipt_id) -> HttpResponse:
    destination = _mine(request, receipt_id)
    fields = connecting.RENEWABLE.get(destination.kind, ())
    try:
        connecting.renew_credentials(destination=destination,
                                     credentials={name: request.POST.get(name, "")[:300] for name in fields})
    except connecting.ConnectError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("New credentials saved: deliveries resume where they stopped."))
    return redirect("connectors_out:destinations")


@login_required
def nextcloud_login(request: HttpRequest) -> HttpResponse:
    """Login Flow v2: the customer logs in to their Nextcloud (another tab), then comes back and
    presses “Finish”, which polls the flow once."""
    customer = _customer(request)
    pending = request.session.get(NEXTCLOUD_KEY)
    if not pending:
        return redirect("connectors_out:destinations")
    flow = crypto.decrypt_json(pending["flow"])
    if request.method == "POST":
        try:
            destination = connecting.finish_nextcloud_login(
                flow=flow, folder=pending["folder"], customer=customer,
                datasets=list(Dataset.objects.filter(pk__in=pending["datasets"], is_published=True)),
                duration=pending["duration"], window_start=_day(pending["window_start"]),
                window_end=_day(pending["window_end"]), request=request)
        except connecting.ConnectError as exc:
            request.session.pop(NEXTCLOUD_KEY, None)
            messages.error(request, str(exc))
            return redirect("connectors_out:destinations")
        if destination is None:
            messages.info(request, _("Not yet: grant access in your Nextcloud first, then press “Finish” again."))
        else:
            request.session.pop(NEXTCLOUD_KEY, None)
            messages.success(request, _("Connected: your data is on its way."))
            return redirect("connectors_out:destinations")
    return render(request, "connectors_out/nextcloud_login.html", {"login_url": flow["login"],
                                                                    "server": flow["server"]})


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
