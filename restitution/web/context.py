"""Template context shared by the customer pages."""

from django.conf import settings


def holder(request):
    return {"holder_name": settings.GATEWAY_HOLDER_NAME}
