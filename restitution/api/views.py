"""Portability API views (v1). Thin: authenticate, check the grant, call the domain, render."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import consent


def pairwise_subject(*, customer_reference: str, client_id: str) -> str:
    """A stable identifier of the customer for one client only (never the legacy id).

    Two clients get unrelated values for the same customer, so they cannot join their data.
    """
    message = f"{client_id}\x1f{customer_reference}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


class GrantedTokenView(APIView):
    authentication_classes = [OAuth2Authentication]
    permission_classes = [IsAuthenticated]


class MeView(GrantedTokenView):
    @extend_schema(
        summary="Who the token speaks for",
        description="A pairwise subject identifier (different for every client) and the consent "
        "the token was issued under.",
        responses=inline_serializer("Me", {
            "sub": serializers.CharField(),
            "datasets": serializers.ListField(child=serializers.CharField()),
            "expires_at": serializers.DateTimeField(),
            "one_time": serializers.BooleanField(),
        }),
    )
    def get(self, request: Request) -> Response:
        token = request.auth
        grant = consent.active_grant(customer=consent.customer_of(token.user), client=token.application)
        return Response({
            "sub": pairwise_subject(customer_reference=grant.customer.reference,
                                    client_id=token.application.client_id),
            "datasets": sorted(d.slug for d in grant.datasets.all()),
            "expires_at": grant.expires_at,
            "one_time": grant.is_one_time,
        })
