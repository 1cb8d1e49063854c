"""The product's URLs plus `/bare`: a plain Django JSON view behind the same middleware and the
same gunicorn setup, the baseline that record-page throughput is compared with (load runs only,
never in production URLs)."""

from django.http import JsonResponse
from django.urls import include, path


def bare(request):
    return JsonResponse({"items": [], "next": None, "last_seq": 0})


urlpatterns = [path("bare", bare), path("", include("config.urls"))]
