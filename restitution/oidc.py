"""Customer login through the holder's own OpenID Connect provider (mozilla-django-oidc).

The provider says who the person is; a claim it issues (GATEWAY_OIDC_CUSTOMER_CLAIM, e.g. the
member number) is looked up among the customers' legacy identities of one system
(GATEWAY_OIDC_IDENTITY_SYSTEM). Someone the holder does not know as a customer is refused; no
account is ever created for a stranger. Local accounts keep working beside it (the demo).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import Http404
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .models import Customer

log = logging.getLogger(__name__)


def oidc_enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID and settings.OIDC_OP_AUTHORIZATION_ENDPOINT)


def customer_for_claims(claims: dict) -> Customer | None:
    """The customer whose legacy identity the provider's claim names, if any."""
    value = claims.get(settings.GATEWAY_OIDC_CUSTOMER_CLAIM)
    if value in (None, ""):
        return None
    return (Customer.objects.filter(identities__system=settings.GATEWAY_OIDC_IDENTITY_SYSTEM,
                                    identities__value=str(value)).select_related("user").first())


class HolderOIDCBackend(OIDCAuthenticationBackend):
    """Maps the provider's identity to a gateway customer (and their user account)."""

    def authenticate(self, request, **kwargs):
        if not oidc_enabled():
            return None
        return super().authenticate(request, **kwargs)

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub")) and claims.get(settings.GATEWAY_OIDC_CUSTOMER_CLAIM) not in (None, "")

    def filter_users_by_claims(self, claims):
        customer = customer_for_claims(claims)
        if customer is None or customer.user is None:
            return get_user_model().objects.none()
        return get_user_model().objects.filter(pk=customer.user_id, is_active=True)

    @transaction.atomic
    def create_user(self, claims):
        """A known customer logging in for the first time gets an account without a password."""
        customer = customer_for_claims(claims)
        if customer is None:
            log.warning("OIDC login refused: the provider's identity matches no customer")
            return None
        if customer.user is not None:
            return None  # an inactive account: refused
        user = get_user_model().objects.create_user(username=f"oidc-{customer.reference}"[:150])
        user.set_unusable_password()
        user.save(update_fields=["password"])
        customer.user = user
        customer.save(update_fields=["user"])
        log.info("OIDC account created for customer %s", customer.pk)
        return user

    def update_user(self, user, claims):
        return user


class _OnlyWhenConfigured:
    def dispatch(self, request, *args, **kwargs):
        if not oidc_enabled():
            raise Http404("OpenID Connect login is not configured")
        return super().dispatch(request, *args, **kwargs)


class LoginStartView(_OnlyWhenConfigured, OIDCAuthenticationRequestView):
    """Sends the customer to the holder's provider (code flow, state, nonce, PKCE S256)."""


class LoginCallbackView(_OnlyWhenConfigured, OIDCAuthenticationCallbackView):
    """Back from the provider: the backend exchanges the code and maps the identity."""
