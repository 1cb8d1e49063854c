"""OAuth endpoints beside the consent page: introspection and the server metadata, as the RFCs say.

Thin subclasses of django-oauth-toolkit's views: the decisions are in `restitution.oauth`. They
never derive a URL from the request's Host header, and never tell a client about another's token.
"""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.compat import login_not_required
from oauth2_provider.views import IntrospectTokenView, OAuthServerMetadataView
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import urlencode

from .. import oauth
from ..models import PimsClient

#: RFC 8414 §2: how clients authenticate at each endpoint. Public clients use `none` (PKCE holds
#: their codes); introspection is for confidential clients only, with their secret.
CONFIDENTIAL_METHODS = ["client_secret_basic", "client_secret_post"]
TOKEN_ENDPOINT_METHODS = [*CONFIDENTIAL_METHODS, "none"]


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
@method_decorator(never_cache, name="dispatch")
class IntrospectionView(IntrospectTokenView):
    """RFC 7662 token introspection for the client that holds the token.

    §2.1: POST only, the caller authenticated as a confidential client (HTTP Basic or the
    request body); a failed authentication is `401 invalid_client` with a Basic challenge
    (§2.3, RFC 6749 §5.2). §2.2: the answer is `restitution.oauth.introspect`'s.
    """

    http_method_names = ["post"]

    def dispatch(self, request, *args, **kwargs):
        # DOT's dispatch would also accept an access token and GET: neither is allowed here.
        if request.method != "POST":
            return self.http_method_not_allowed(request, *args, **kwargs)
        client = self.authenticated_client(request)
        if client is None:
            response = JsonResponse({"error": "invalid_client",
                                     "error_description": "Client authentication failed."}, status=401)
            response["WWW-Authenticate"] = oauth.BASIC_CHALLENGE
            return response
        request.introspecting_client = client
        return self.post(request, *args, **kwargs)

    def authenticated_client(self, request) -> PimsClient | None:
        """The approved confidential client whose credentials come with the request, or None."""
        core = self.get_oauthlib_core()
        oauthlib_request = OAuthlibRequest(request.build_absolute_uri(request.path), request.method,
                                           urlencode(core.extract_body(request)), core.extract_headers(request))
        if not core.server.request_validator.authenticate_client(oauthlib_request):
            return None
        client = oauthlib_request.client
        return client if client.client_type == PimsClient.CLIENT_CONFIDENTIAL else None

    def post(self, request, *args, **kwargs):
        token = request.POST.get("token")
        if not token:
            return JsonResponse({"error": "invalid_request", "error_description": "The token parameter is missing."},
                                status=400)
        return JsonResponse(oauth.introspect(token=token, token_type_hint=request.POST.get("token_type_hint"),
                                             client=request.introspecting_client))


class ServerMetadataView(OAuthServerMetadataView):
    """RFC 8414 §2 metadata: issuer and endpoint URLs from GATEWAY_ISSUER (DOT reads it as
    OIDC_ISS_ENDPOINT), and each endpoint's client authentication methods as they really are."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        data = json.loads(response.content)
        data["token_endpoint_auth_methods_supported"] = TOKEN_ENDPOINT_METHODS
        data["revocation_endpoint_auth_methods_supported"] = TOKEN_ENDPOINT_METHODS
        data["introspection_endpoint_auth_methods_supported"] = CONFIDENTIAL_METHODS
        answer = JsonResponse(data)
        answer["Access-Control-Allow-Origin"] = "*"
        return answer
