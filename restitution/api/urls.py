"""Portability API v1."""

from django.urls import path

from . import exports, views

urlpatterns = [
    path("me", views.MeView.as_view(), name="api-me"),
    path("datasets", views.DatasetListView.as_view(), name="api-datasets"),
    path("datasets/<slug:slug>/schema", views.DatasetSchemaView.as_view(), name="api-dataset-schema"),
    path("datasets/<slug:slug>/records", views.RecordListView.as_view(), name="api-records"),
    path("datasets/<slug:slug>/documents/<str:sha256>", views.DocumentView.as_view(), name="api-document"),
    path("changes", views.ChangeFeedView.as_view(), name="api-changes"),
    path("extractions", views.RefreshView.as_view(), name="api-refresh"),
    path("extractions/<int:run_id>", views.ExtractionStatusView.as_view(), name="api-extraction"),
    path("exports", exports.ExportListView.as_view(), name="api-exports"),
    path("exports/<uuid:export_id>", exports.ExportDetailView.as_view(), name="api-export"),
    path("exports/<uuid:export_id>/archive", exports.ExportArchiveView.as_view(), name="api-export-archive"),
]
