"""`manage.py verify_history`: check every customer's hash-chained access history."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from restitution import audit
from restitution.models import AccessEvent, Customer


class Command(BaseCommand):
    help = ("Check the access history of every customer (or one): exits non-zero if any event was "
            "edited, deleted or reordered.")

    def add_arguments(self, parser):
        parser.add_argument("--customer", metavar="REFERENCE", help="only this customer")

    def handle(self, *args, customer=None, **options):
        if connection.vendor != "postgresql":
            raise CommandError("the history is hash-chained on PostgreSQL only")
        customer_id = None
        if customer:
            found = Customer.objects.filter(reference=customer).first()
            if found is None:
                raise CommandError(f"unknown customer {customer!r}")
            customer_id = found.pk
        problems = audit.verify_chains(customer_id)
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"history verification failed: {len(problems)} problem(s)")
        events = AccessEvent.objects.all() if customer_id is None else AccessEvent.objects.filter(
            customer_id=customer_id)
        self.stdout.write(f"history intact: {events.count()} event(s) in "
                          f"{events.values('customer_id').distinct().count()} chain(s)")
