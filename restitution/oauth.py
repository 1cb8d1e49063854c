"""The gateway's extensions of django-oauth-toolkit: scopes per dataset, grants that bound tokens.

Everything here is an override DOT offers (SCOPES_BACKEND_CLASS, OAUTH2_VALIDATOR_CLASS); no
OAuth logic is re-implemented. What it adds: a token is honoured only while the customer's grant
to that client is in force and only for the datasets of that grant.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from . import audit, bearer, consent
from .models import AccessEvent, Dataset, ExchangedCode, PimsClient

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


def issuer() -> str:
    """The issuer identifier (RFC 8414 §2), from GATEWAY_ISSUER: never derived from a request."""
    return oauth2_settings.OIDC_ISS_ENDPOINT


def with_issuer(uri: str) -> str:
    """The redirect URI with this server's `iss` (RFC 9207 §2: "in authorization responses,
    including error responses"), replacing any `iss` already in it."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("iss", issuer())])))


def checksum(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def code_replayed(*, code: str) -> bool:
    """RFC 6749 §4.1.2 (and RFC 9700 §4.5.3): a code used more than once revokes every token
    issued from it, its refresh-token family included. True if the code had been exchanged."""
    exchanged = ExchangedCode.objects.filter(code_checksum=checksum(code)).select_related("client").first()
    if exchanged is None:
        return False
    _revoke_family(exchanged.token_family, client=exchanged.client)
    return True


def _revoke_family(token_family, *, client) -> None:
    if token_family is None:
        return
    RefreshToken = get_refresh_token_model()
    owner = RefreshToken.objects.filter(token_family=token_family).select_related("user").first()
    RefreshToken.revoke_family(token_family)
    customer = consent.customer_of(owner.user) if owner is not None else None
    if customer is not None:
        audit.record_event(kind=AccessEvent.Kind.TOKEN_REVOKED, customer=customer, client=client,
                           grant=consent.active_grant(customer=customer, client=client),
                           detail={"reason": "authorization code used twice"})


class GatewayOAuthLibCore(OAuthLibCore):
    """DOT's bridge to oauthlib, with the challenge RFC 6749 §5.2 asks for: a client that failed to
    authenticate at the token or revocation endpoint is answered 401 with `WWW-Authenticate: Basic`
    (the scheme it may authenticate with), not oauthlib's Bearer challenge."""

    def create_token_response(self, request):
        uri, headers, body, status = super().create_token_response(request)
        return uri, basic_challenge(headers, status), body, status

    def create_revocation_response(self, request):
        uri, headers, body, status = super().create_revocation_response(request)
        return uri, basic_challenge(headers, status), body, status


BASIC_CHALLENGE = 'Basic realm="oauth", charset="UTF-8"'


def basic_challenge(headers: dict, status: int) -> dict:
    if status != 401:
        return headers
    return {**{k: v for k, v in headers.items() if k.lower() != "www-authenticate"},
            "WWW-Authenticate": BASIC_CHALLENGE}


def _refuse(request, description: str) -> bool:
    request.oauth2_error = OrderedDict([("error", "invalid_token"), ("error_description", description)])
    return False


class GatewayOAuth2Validator(OAuth2Validator):
    """DOT's validator, plus: no grant in force, no token (RFC 6750 §3.1 invalid_token)."""

    def is_pkce_required(self, client_id, request):
        """Always for public clients; for a confidential one unless the operator relaxed it
        (PimsClient.pkce_optional). An unknown client: required (it is refused anyway)."""
        client = getattr(request, "client", None)
        if not isinstance(client, PimsClient) or client.client_id != client_id:
            client = PimsClient.objects.filter(client_id=client_id).first()
        return client is None or client.needs_pkce

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
            code_replayed(code=code)  # a second use: what the first one gave dies too
            return False
        # The customer may have revoked between approving and the client's exchange.
        return consent.active_grant(customer=consent.customer_of(request.user), client=client) is not None

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        # A grant's expiry or revocation bounds refresh: no grant in force, no new token.
        return consent.active_grant(customer=consent.customer_of(request.user), client=client) is not None

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        """The code is spent: remember it (hashed) with the token family it started, so a replay
        can revoke them (RFC 6749 §4.1.2)."""
        family = getattr(request, "issued_token_family", None)
        try:
            super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)
        except InvalidGrantError:
            # Another exchange of the same code won the race: both exchanges' tokens die.
            code_replayed(code=code)
            _revoke_family(family, client=request.client)
            raise
        ExchangedCode.objects.create(code_checksum=checksum(code), client=request.client, token_family=family)

    def save_bearer_token(self, token, request, *args, **kwargs):
        super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "authorization_code" and token.get("refresh_token"):
            request.issued_token_family = (get_refresh_token_model().objects
                                           .filter(token_checksum=checksum(token["refresh_token"]))
                                           .values_list("token_family", flat=True).first())
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


INACTIVE: dict = {"active": False}


def introspect(*, token: str, token_type_hint: str | None, client) -> dict:
    """RFC 7662 §2.2: what `client` may learn of `token`, access or refresh token alike.

    A client learns only of its own tokens: any other token, unknown, expired, revoked or no
    longer covered by a grant in force is exactly `{"active": false}` (§2.2, §4). The customer
    is named by the pairwise `sub` the API gives that client, never by a login name or an
    internal id. The hint is where to look first (§2.1); both kinds are looked for.
    """
    digest = checksum(token)
    now = timezone.now()
    lookups = (_access_token_answer, _refresh_token_answer)
    if token_type_hint == "refresh_token":  # noqa: S105 - a token kind, not a secret
        lookups = lookups[::-1]
    for lookup in lookups:
        answer = lookup(digest, client=client, now=now)
        if answer is not None:
            return answer
    return dict(INACTIVE)


def _claims(*, client, customer, scope: str, expires, issued) -> dict:
    return {"active": True, "scope": scope, "client_id": client.client_id,
            "sub": consent.pairwise_subject(customer_reference=customer.reference, client_id=client.client_id),
            "exp": int(expires.timestamp()), "iat": int(issued.timestamp()), "iss": issuer()}


def _access_token_answer(digest: str, *, client, now) -> dict | None:
    access_token = bearer.load(digest, now=now)
    if access_token is None:
        return None
    grant = access_token.consent_grant
    if (access_token.application_id != client.pk or grant is None or access_token.expires <= now
            or not set(access_token.scope.split()) <= consent.grant_scopes(grant)):
        return dict(INACTIVE)
    return {**_claims(client=client, customer=grant.customer, scope=access_token.scope,
                      expires=access_token.expires, issued=access_token.created), "token_type": "Bearer"}


def _refresh_token_answer(digest: str, *, client, now) -> dict | None:
    refresh_token = (get_refresh_token_model().objects.filter(token_checksum=digest)
                     .select_related("access_token").order_by(F("revoked").desc(nulls_first=True)).first())
    if refresh_token is None:
        return None
    expires = refresh_token.created + timedelta(seconds=oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS)
    customer = consent.customer_of(refresh_token.user) if refresh_token.user_id else None
    grant = consent.active_grant(customer=customer, client=client) if customer is not None else None
    if (refresh_token.application_id != client.pk or refresh_token.revoked is not None or expires <= now
            or grant is None):
        return dict(INACTIVE)
    scope = refresh_token.access_token.scope if refresh_token.access_token is not None else ""
    return _claims(client=client, customer=customer, scope=scope, expires=min(expires, grant.expires_at),
                   issued=refresh_token.created)
