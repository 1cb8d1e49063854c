"""Customer pages of the push side, under /account/destinations/: the generic pages, then each
registered kind's own pages (authorization callbacks, login flows)."""

from django.urls import path

from . import registry, views

app_name = "connectors_out"
urlpatterns = [
    path("", views.destinations, name="destinations"),
    path("connect/<slug:kind>/", views.connect, name="connect"),
    path("<uuid:receipt_id>/disconnect/", views.disconnect, name="disconnect"),
    path("<uuid:receipt_id>/retry/", views.retry, name="retry"),
    path("<uuid:receipt_id>/credentials/", views.renew_credentials, name="credentials"),
]
for _kind in registry.kinds():
    urlpatterns += _kind.url_patterns()
