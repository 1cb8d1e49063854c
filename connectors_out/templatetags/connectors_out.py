"""The dashboard's small “my clouds” block: a link, and a warning when a delivery failed."""

from __future__ import annotations

from django import template

from ..models import Delivery, Destination

register = template.Library()


@register.inclusion_tag("connectors_out/dashboard_block.html")
def destinations_block(customer) -> dict:
    active = [d for d in Destination.objects.filter(customer=customer, revoked_at__isnull=True) if d.is_active()]
    failing = [d for d in active if (last := d.deliveries.order_by("-queued_at", "-id").first())
               and last.status == Delivery.Status.FAILED]
    return {"active": active, "failing": failing}
