"""The consent page: DOT's authorization endpoint with the customer's choices on it.

GET validates the client's request (client, exact redirect URI, PKCE S256, scopes) before
anything is shown; POST turns the customer's choices into a Grant and an authorization code,
or returns `access_denied`. Never framable (X-Frame-Options DENY), CSRF-protected.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from django.db import transaction
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_deny
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749.errors import (
    InvalidClientIdError,
    InvalidRedirectURIError,
    InvalidRequestError,
    MismatchingRedirectURIError,
    MissingClientIdError,
    MissingRedirectURIError,
)

from .. import consent, metrics
from ..consent import ConsentError
from ..models import ConsentFlow, PimsClient
from ..oauth import with_issuer
from .forms import ConsentForm


@method_decorator(xframe_options_deny, name="dispatch")
class ConsentView(AuthorizationView):
    template_name = "restitution/consent.html"
    form_class = ConsentForm

    def validate_authorization_request(self, request):
        scopes, credentials = super().validate_authorization_request(request)
        # Checked once the client and its exact redirect URI are known, so the error can go back.
        if not credentials.get("state"):
            # The client's CSRF protection: required here, not merely recommended.
            self._refuse(credentials, "The state parameter is required.")
        method = credentials.get("code_challenge_method")
        relaxed = not method and not credentials.get("code_challenge") and not self._needs_pkce(credentials)
        if method != "S256" and not relaxed:
            # RFC 9700 §2.1.1: S256 only, and from every client but a confidential one the operator
            # let go without (PimsClient.pkce_optional). Refused before the customer is asked anything.
            self._refuse(credentials, 'PKCE with code_challenge_method "S256" is required.')
        return scopes, credentials

    @staticmethod
    def _needs_pkce(credentials) -> bool:
        client = PimsClient.objects.filter(client_id=credentials.get("client_id") or "").first()
        return client is None or client.needs_pkce

    def redirect(self, redirect_to, application):
        # RFC 9207 §2: `iss` in every authorization response to the client, errors included.
        return super().redirect(with_issuer(redirect_to), application)

    def error_response(self, error, application, **kwargs):
        """A request that cannot go back to the client (unknown client, unregistered redirect
        URI): a page in the customer's language, in plain words, with a way back. The protocol
        error stays on the page, in small print, for the client's developers."""
        response = super().error_response(error, application, **kwargs)
        if response.status_code in (301, 302, 303, 307, 308) or not hasattr(response, "context_data"):
            return response
        oauthlib_error = response.context_data["error"]
        context = {"error": oauthlib_error, "explanation": self._explain(oauthlib_error)}
        return render(self.request, "restitution/oauth_error.html", context, status=response.status_code)

    def _explain(self, error) -> dict[str, str]:
        if isinstance(error, (InvalidClientIdError, MissingClientIdError)):
            client_id = self.request.GET.get("client_id", "") or self.request.POST.get("client_id", "")
            client = PimsClient.objects.filter(client_id=client_id).first() if client_id else None
            if client is not None and client.approval == PimsClient.Approval.PENDING:
                return {"title": _("This app is not approved yet"),
                        "text": _("%(client)s has asked to be allowed to request your data, and the "
                                  "data holder has not approved it yet. Nothing was shared. Try again "
                                  "once the app tells you it has been approved.") % {"client": client.name}}
            if client is not None and client.approval != PimsClient.Approval.APPROVED:
                return {"title": _("This app may not ask for your data"),
                        "text": _("%(client)s is not allowed to ask for your data at the moment. "
                                  "Nothing was shared.") % {"client": client.name}}
            return {"title": _("We do not know the app that sent you here"),
                    "text": _("The link you followed names an app that is not registered with us. "
                              "Nothing was shared. Contact the app's support if you expected it to work.")}
        if isinstance(error, (MismatchingRedirectURIError, InvalidRedirectURIError, MissingRedirectURIError)):
            return {"title": _("We cannot send you back to this app"),
                    "text": _("The app asked us to send you back to an address it has not registered "
                              "with us. To protect you, we did not follow it and nothing was shared. "
                              "Contact the app's support.")}
        return {"title": _("This request cannot be accepted"),
                "text": _("The app that sent you here made a request we cannot accept. Nothing was "
                          "shared. Contact the app's support.")}

    def form_invalid(self, form):
        # The page again, with the form's message: the request as sent cannot be done.
        response = super().form_invalid(form)
        response.status_code = 400
        return response

    @staticmethod
    def _refuse(credentials, description: str):
        error = InvalidRequestError(description=description, state=credentials.get("state"))
        raise OAuthToolkitError(error=error, redirect_uri=credentials.get("redirect_uri"))

    def dispatch(self, request, *args, **kwargs):
        # Anonymous visitors go to the login page (DOT's LoginRequiredMixin); a logged-in
        # account that is no customer has no data to share.
        if request.user.is_authenticated and consent.customer_of(request.user) is None:
            return render(request, "restitution/not_a_customer.html", status=403)
        if not request.user.is_authenticated and request.method == "GET":
            # The operator's metrics follow each flow by stage (abandoned flows, CDR-style).
            metrics.consent_flow_step(request=request, client_id=request.GET.get("client_id", ""),
                                      state=request.GET.get("state", ""), stage=ConsentFlow.Stage.AUTHENTICATION)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        if "approval_prompt" in request.GET:
            # The customer decides on this page, every time: a client's `approval_prompt=auto`
            # must not turn an earlier consent into a silent new code.
            request.GET = request.GET.copy()
            del request.GET["approval_prompt"]
        response = super().get(request, *args, **kwargs)
        context = getattr(response, "context_data", None) or {}
        if response.status_code == 200 and context.get("form") is not None and not context.get("error"):
            metrics.consent_flow_step(request=request, client_id=request.GET.get("client_id", ""),
                                      state=request.GET.get("state", ""), stage=ConsentFlow.Stage.CONSENT,
                                      customer=consent.customer_of(request.user))
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        client = context.get("application")
        if client is None and form is not None and form.is_bound:
            client = PimsClient.objects.filter(client_id=form.data.get("client_id")).first()
            context["application"] = client
        language = get_language() or "en"
        context["language"] = language
        context["purpose"] = client.purpose(language) if client else ""
        if form is not None:
            context["dataset_rows"] = [
                {"slug": d.slug, "title": d.title_fr if language.startswith("fr") else d.title_en,
                 "description": d.description_fr if language.startswith("fr") else d.description_en,
                 "checked": d.slug in (form["datasets"].value() or [])}
                for d in form.requested_datasets
            ]
        return context

    def form_valid(self, form):
        allow = bool(form.cleaned_data.get("allow"))
        chosen = form.chosen_datasets() if allow else []
        if allow and not chosen:
            allow = False  # nothing ticked: the same as declining
        form.cleaned_data["allow"] = allow
        if allow:
            form.cleaned_data["scope"] = " ".join(d.scope for d in chosen)
        grant = None
        with transaction.atomic():
            if allow:
                # The grant first: replacing an earlier one ends that one's codes and tokens,
                # which must not include the code about to be issued.
                try:
                    grant = consent.create_grant(
                        customer=consent.customer_of(self.request.user),
                        client=PimsClient.objects.get(client_id=form.cleaned_data["client_id"]),
                        datasets=chosen, duration=form.cleaned_data["duration"],
                        window_start=form.cleaned_data.get("window_start"),
                        window_end=form.cleaned_data.get("window_end"),
                        language=(get_language() or "en")[:2], request=self.request,
                    )
                except (ConsentError, PimsClient.DoesNotExist) as error:
                    # A form altered on its way back (a dataset the client may not ask for, an
                    # unknown client): the page again with the reason, nothing recorded.
                    form.add_error(None, str(error) if isinstance(error, ConsentError) else
                                   "This request is not valid.")
                    return self.form_invalid(form)
            response = super().form_valid(form)
            issued = parse_qs(urlparse(getattr(self, "success_url", "") or "").query).get("code")
            if allow and not issued:
                transaction.set_rollback(True)  # the client's request failed: no grant either
            else:
                metrics.consent_flow_step(
                    request=self.request, client_id=form.cleaned_data["client_id"],
                    state=form.cleaned_data.get("state") or "", grant=grant,
                    stage=ConsentFlow.Stage.TOKEN_EXCHANGE if allow else ConsentFlow.Stage.REJECTED,
                    customer=consent.customer_of(self.request.user))
        return response
