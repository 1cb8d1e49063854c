"""Bearer tokens on the portability API, refused as RFC 6750 §3 says.

No token: 401 with a bare `Bearer` challenge (§3.1: no error code when the request carried no
authentication). A token that is unknown, expired, revoked or whose consent ended: 401
`error="invalid_token"`. A valid token without the scope a dataset needs: 403
`error="insufficient_scope"`. Every answer is also an RFC 9457 problem (problems.py).
"""

from __future__ import annotations

from drf_spectacular.contrib.django_oauth_toolkit import DjangoOAuthToolkitScheme
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import exceptions

REALM = "api"


def _quoted(value: str) -> str:
    """An RFC 9110 quoted-string: no line breaks, quotes and backslashes escaped."""
    value = value.replace("\r", "").replace("\n", "")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_challenge(**params: str) -> str:
    attributes = {"realm": REALM, **params}
    return "Bearer " + ", ".join(f"{key}={_quoted(value)}" for key, value in attributes.items())


class BearerAuthentication(OAuth2Authentication):
    """DOT's DRF authentication, telling a bad token from a missing one."""

    www_authenticate_realm = REALM

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None and request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0].lower() == "bearer":
            error = getattr(request, "oauth2_error", None) or {}
            request.oauth2_error = {"error": "invalid_token",
                                    "error_description": error.get("error_description")
                                    or "The access token is invalid."}
            raise exceptions.AuthenticationFailed(request.oauth2_error["error_description"])
        return result

    def authenticate_header(self, request):
        error = getattr(request, "oauth2_error", None) or {}
        if not error.get("error"):
            return bearer_challenge()
        return bearer_challenge(**{k: str(v) for k, v in error.items() if v})


class InsufficientScope(exceptions.PermissionDenied):
    """RFC 6750 §3.1: the token is valid, but its scope does not cover this resource."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"The access token does not cover {scope}.")
        self.scope = scope

    @property
    def challenge(self) -> str:
        return bearer_challenge(error="insufficient_scope", error_description=str(self.detail), scope=self.scope)


class BearerAuthenticationScheme(DjangoOAuthToolkitScheme):
    """The OpenAPI security scheme of BearerAuthentication: DOT's own (oauth2)."""

    target_class = "restitution.api.authentication.BearerAuthentication"
