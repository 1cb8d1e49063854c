from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class RestitutionConfig(AppConfig):
    name = "restitution"
    verbose_name = "Restitution gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the Celery signals that carry the request id, and the Prometheus collector.
        from . import observability

        observability.register_collector()


class GatewayAdminConfig(admin_apps.AdminConfig):
    """The admin, with the operator console's home (restitution/console.py)."""

    default = False
    default_site = "restitution.console.GatewayAdminSite"
