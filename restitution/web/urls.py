"""Customer pages."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("account/", views.dashboard, name="dashboard"),
    path("account/refresh/", views.refresh, name="refresh"),
    path("account/refresh/status/", views.refresh_status, name="refresh-status"),
    path("account/grants/<uuid:receipt_id>/revoke/", views.revoke, name="revoke"),
    path("account/grants/<uuid:receipt_id>/receipt.json", views.receipt, name="receipt"),
]
