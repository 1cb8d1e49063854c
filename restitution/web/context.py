"""Template context shared by the customer pages."""

from django.conf import settings


def holder(request):
    from ..oidc import oidc_enabled

    return {"holder_name": settings.GATEWAY_HOLDER_NAME, "oidc_login": oidc_enabled(),
            "customer_time_zone": settings.GATEWAY_CUSTOMER_TIME_ZONE}
