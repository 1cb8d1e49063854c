"""URL map: admin, customer pages, OAuth2 (/o/), the portability API (/api/v1/)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from oauth2_provider import views as oauth_views

from config.health import ReadinessView
from restitution.api import operator, registration
from restitution.api.schema import schema_view
from restitution.oidc import LoginCallbackView, LoginStartView
from restitution.web.consent import ConsentView
from restitution.web.endpoints import IntrospectionView, ServerMetadataView
from restitution.web.operator import operator_metrics_page
from restitution.web.views import GatewayLoginView

oauth_patterns = (
    [
        # The consent page replaces DOT's plain authorization form.
        path("authorize/", ConsentView.as_view(), name="authorize"),
        path("token/", oauth_views.TokenView.as_view(), name="token"),
        path("revoke_token/", oauth_views.RevokeTokenView.as_view(), name="revoke-token"),
        path("introspect/", IntrospectionView.as_view(), name="introspect"),
        # RFC 7591/7592, bounded and under the operator's review (restitution/clients.py).
        path("register/", registration.RegistrationView.as_view(), name="dcr-register"),
        path("register/<str:client_id>/", registration.RegistrationManagementView.as_view(),
             name="dcr-register-management"),
    ],
    "oauth2_provider",
)

# RFC 8414 and RFC 9728 metadata at the origin's root. The issuer has no path, so there is no
# path-component form of the server metadata (§3.1).
metadata_patterns = (
    [
        path(".well-known/oauth-authorization-server", ServerMetadataView.as_view(), name="oauth-server-metadata"),
        path(".well-known/oauth-protected-resource", oauth_views.OAuthProtectedResourceMetadataView.as_view(),
             name="oauth-resource-metadata"),
    ],
    "oauth2_provider",
)

urlpatterns = [
    # Operations: readiness, Prometheus, the operator metrics (page in the admin, and its API).
    path("readyz", ReadinessView.as_view(), name="readyz"),
    path("metrics", operator.prometheus_metrics, name="prometheus-metrics"),
    path("api/operator/metrics", operator.OperatorMetricsView.as_view(), name="operator-metrics"),
    path("admin/operator-metrics/", admin.site.admin_view(operator_metrics_page), name="operator-metrics-page"),
    path("admin/", admin.site.urls),
    path("accounts/login/", GatewayLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Login through the holder's OpenID Connect provider (404 unless configured).
    path("oidc/authenticate/", LoginStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", LoginCallbackView.as_view(), name="oidc_authentication_callback"),
    path("o/", include(oauth_patterns)),
    path("", include(metadata_patterns, namespace="oauth2_metadata")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("restitution.api.urls")),
    path("api/schema/", schema_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema", template_name="restitution/redoc.html"),
         name="api-redoc"),
    path("account/destinations/", include("connectors_out.urls")),
    path("", include("restitution.web.urls")),
]

# Errors Django raises itself answer problem+json on API paths (RFC 9457).
handler400 = "restitution.api.problems.bad_request"
handler404 = "restitution.api.problems.page_not_found"
handler500 = "restitution.api.problems.server_error"
