"""The gateway's extensions of django-oauth-toolkit: scopes per dataset, grants that bound tokens.

Everything here is an override DOT offers (SCOPES_BACKEND_CLASS, OAUTH2_VALIDATOR_CLASS); no
OAuth logic is re-implemented. What it adds: a token is honoured only while the customer's grant
to that client is in force and only for the datasets of that grant.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes

from . import audit, bearer, consent
from .models import AccessEvent, Dataset

SCOPE_PREFIX = "dataset:"
ALLOWED_GRANT_TYPES = ("authorization_code", "refresh_token")


#: Every published scope and its title, kept per process: DOT asks for it on every bearer-token
#: check (`request.scopes`). A change to a dataset empties it in the process that made the change;
#: other processes see it within CATALOGUE_SECONDS. Access decisions never read it: they use the
#: token's own scope string and the grant's datasets, read from the database on every request.
CATALOGUE_SECONDS = 30
_catalogue: tuple[float, dict[str, str]] | None = None


def published_scopes() -> dict[str, str]:
    global _catalogue
    now = time.monotonic()
    if _catalogue is None or now - _catalogue[0] >= CATALOGUE_SECONDS:
        _catalogue = (now, {d.scope: d.title_en for d in Dataset.objects.filter(is_published=True)})
    return dict(_catalogue[1])


def forget_published_scopes(**kwargs) -> None:
    global _catalogue
    _catalogue = None


post_save.connect(forget_published_scopes, sender=Dataset, dispatch_uid="oauth-catalogue-save")
post_delete.connect(forget_published_scopes, sender=Dataset, dispatch_uid="oauth-catalogue-delete")


class DatasetScopes(BaseScopes):
    """One scope per published dataset, `dataset:<slug>`; a client may ask only for its own."""

    def get_all_scopes(self):
        return published_scopes()

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        datasets = Dataset.objects.filter(is_published=True)
        if application is not None:
            datasets = datasets.filter(clients=application)
        return [d.scope for d in datasets]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        # No scope asked: offer every dataset the client may ask for; the customer chooses.
        return self.get_available_scopes(application, request)


def _refuse(request, description: str) -> bool:
    request.oauth2_error = OrderedDict([("error", "invalid_token"), ("error_description", description)])
    return False


class GatewayOAuth2Validator(OAuth2Validator):
    """DOT's validator, plus: no grant in force, no token (RFC 6750 §3.1 invalid_token)."""

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        """Authorization code and refresh only, whatever a client was registered with."""
        if grant_type not in ALLOWED_GRANT_TYPES:
            return False
        if grant_type == "refresh_token":
            return True
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return response_type == "code" and super().validate_response_type(
            client_id, response_type, client, request, *args, **kwargs)

    def _load_access_token(self, token):
        # DOT's own lookup, and with it the customer and the grant in force, in one query.
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        return bearer.load(checksum, now=timezone.now())

    def validate_bearer_token(self, token, scopes, request):
        if not super().validate_bearer_token(token, scopes, request):
            return False
        access_token = request.access_token
        # Read with the token, on every request: a revoked or expired grant ends its tokens at once.
        grant = getattr(access_token, "consent_grant", None)
        if grant is None:
            return _refuse(request, "The consent behind this token has ended.")
        # The raw scope string: `access_token.scopes` would query every published dataset again.
        if not set(access_token.scope.split()) <= consent.grant_scopes(grant):
            return _refuse(request, "The token asks for more than the consent gives.")
        request.grant = grant
        return True

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        # The customer may have revoked between approving and the client's exchange.
        return consent.active_grant(customer=consent.customer_of(request.user), client=client) is not None

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        # A grant's expiry or revocation bounds refresh: no grant in force, no new token.
        return consent.active_grant(customer=consent.customer_of(request.user), client=client) is not None

    def save_bearer_token(self, token, request, *args, **kwargs):
        super().save_bearer_token(token, request, *args, **kwargs)
        customer = consent.customer_of(request.user)
        if customer is None:
            return
        grant = consent.active_grant(customer=customer, client=request.client)
        refreshed = request.grant_type == "refresh_token"
        audit.record_event(
            kind=AccessEvent.Kind.TOKEN_REFRESHED if refreshed else AccessEvent.Kind.TOKEN_ISSUED,
            customer=customer, grant=grant, client=request.client,
            detail={"scope": token.get("scope", ""), "expires_in": token.get("expires_in")},
        )

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        """RFC 7009 revocation, logged for the customer (DOT scopes it to the calling client)."""
        client = getattr(request, "client", None)
        owner = None
        if getattr(client, "pk", None) is not None:
            checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
            for model in (get_access_token_model(), get_refresh_token_model()):
                found = model.objects.filter(token_checksum=checksum, application=client).first()
                if found is not None:
                    owner = found.user
                    break
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        customer = consent.customer_of(owner)
        if customer is not None:
            audit.record_event(kind=AccessEvent.Kind.TOKEN_REVOKED, customer=customer, client=client,
                               grant=consent.active_grant(customer=customer, client=client))
