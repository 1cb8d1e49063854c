"""Template context shared by the customer pages."""

from django.conf import settings


def holder(request):
    from ..oidc import oidc_enabled

    # The one time zone customers read every time in, named at the foot of every page.
    return {"holder_name": settings.GATEWAY_HOLDER_NAME, "oidc_login": oidc_enabled(),
            "time_zone_name": settings.GATEWAY_CUSTOMER_TIME_ZONE,
            "customer_time_zone": settings.GATEWAY_CUSTOMER_TIME_ZONE}
