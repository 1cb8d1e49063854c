"""The push side's Prometheus figures, registered by the app (apps.py) next to the gateway's."""

from __future__ import annotations

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

_registered = False


class DeliveryCollector(Collector):
    """Push deliveries run in workers: counted from their rows, so every web process sees them."""

    def describe(self):
        # Registering must not query the database (the app registry is not ready then).
        return [GaugeMetricFamily("gateway_deliveries", ""), CounterMetricFamily("gateway_delivery_attempts", "")]

    def collect(self):
        from .models import Delivery, DeliveryAttempt

        deliveries = GaugeMetricFamily("gateway_deliveries", "Push deliveries by destination kind and status.",
                                       labels=["connector", "status"])
        for row in Delivery.objects.values("destination__kind", "status").annotate(n=Count("id")):
            deliveries.add_metric([row["destination__kind"], row["status"]], row["n"])
        yield deliveries
        attempts = CounterMetricFamily("gateway_delivery_attempts", "Push delivery attempts by destination kind "
                                       "and outcome.", labels=["connector", "outcome"])
        for row in (DeliveryAttempt.objects.exclude(outcome="")
                    .values("delivery__destination__kind", "outcome").annotate(n=Count("id"))):
            attempts.add_metric([row["delivery__destination__kind"], row["outcome"]], row["n"])
        yield attempts


def register_collector() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(DeliveryCollector())
        _registered = True
