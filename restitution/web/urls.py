"""Customer pages."""

from django.urls import path

from . import data, views

urlpatterns = [
    path("", views.home, name="home"),
    path("account/", views.dashboard, name="dashboard"),
    path("account/refresh/", views.refresh, name="refresh"),
    path("account/refresh/status/", views.refresh_status, name="refresh-status"),
    path("account/grants/<uuid:receipt_id>/revoke/", views.revoke, name="revoke"),
    path("account/grants/<uuid:receipt_id>/receipt.json", views.receipt, name="receipt"),
    path("account/grants/<uuid:receipt_id>/receipt/", views.receipt_page, name="receipt-page"),
    path("account/data/<slug:slug>/", data.dataset_page, name="dataset"),
    path("account/data/<slug:slug>/spreadsheet.csv", data.dataset_spreadsheet, name="dataset-spreadsheet"),
    path("account/data/<slug:slug>/documents/<str:sha256>", data.dataset_document, name="dataset-document"),
    path("account/history/", views.history_page, name="history"),
    path("account/history.json", views.history_json, name="history-json"),
    path(".well-known/restitution-history-keys", views.history_keys, name="history-keys"),
    path("account/download/", data.download_all, name="download-all"),
    path("account/download/status/", data.download_status, name="download-status"),
]
