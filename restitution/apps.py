from django.apps import AppConfig


class RestitutionConfig(AppConfig):
    name = "restitution"
    verbose_name = "Restitution gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the Celery signals that carry the request id, and the Prometheus collector.
        from . import observability

        observability.register_collector()
