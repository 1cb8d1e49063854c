from django.apps import AppConfig


class RestitutionConfig(AppConfig):
    name = "restitution"
    verbose_name = "Restitution gateway"
    default_auto_field = "django.db.models.BigAutoField"
