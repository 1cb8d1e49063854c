"""URL map: admin, customer pages, OAuth2 (/o/), the portability API (/api/v1/)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
