from django.apps import AppConfig


class ConnectorsOutConfig(AppConfig):
    name = "connectors_out"
    label = "connectors_out"
    verbose_name = "Push to personal clouds and webhooks"
