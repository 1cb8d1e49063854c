from django.apps import AppConfig


class ConnectorsOutConfig(AppConfig):
    name = "connectors_out"
    label = "connectors_out"
    verbose_name = "Push to personal clouds and webhooks"

    def ready(self) -> None:
        # The domain events this app acts on (restitution/events.py), and its Prometheus figures.
        from restitution import events

        from . import metrics

        events.subscribe(events.RUN_CHANGED_DATA, "connectors_out.tasks.on_run_changed_data")
        events.subscribe(events.RUN_CHANGED_DATA, "connectors_out.tasks.announce_new_data")
        events.subscribe(events.GRANT_REVOKED, "connectors_out.tasks.on_grant_revoked")
        metrics.register_collector()
        from restitution import console

        from .admin import attention_items

        console.register(attention_items)
