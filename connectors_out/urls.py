"""Customer pages of the push side, under /account/destinations/."""

from django.urls import path

from . import views

app_name = "connectors_out"
urlpatterns = [
    path("", views.destinations, name="destinations"),
    path("connect/<slug:kind>/", views.connect, name="connect"),
    path("nextcloud-login/", views.nextcloud_login, name="nextcloud-login"),
    path("callback/cozy/", views.cozy_callback, name="cozy-callback"),
    path("callback/remotestorage/", views.remotestorage_callback, name="remotestorage-callback"),
    path("<uuid:receipt_id>/disconnect/", views.disconnect, name="disconnect"),
    path("<uuid:receipt_id>/retry/", views.retry, name="retry"),
    path("<uuid:receipt_id>/credentials/", views.renew_credentials, name="credentials"),
]
