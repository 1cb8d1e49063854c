"""`manage.py extract`: queue (or run here, with --sync) extraction runs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from restitution import extraction
from restitution.models import Customer, ExtractionRun, Source


class Command(BaseCommand):
    help = "Extract customers' records from legacy sources (all sources and customers by default)."

    def add_arguments(self, parser):
        parser.add_argument("--source", action="append", dest="sources", metavar="SLUG",
                            help="only this source (repeatable)")
        parser.add_argument("--customer", metavar="REFERENCE", help="only this customer")
        parser.add_argument("--sync", action="store_true",
                            help="run here and now instead of queueing for the workers")

    def handle(self, *args, sources=None, customer=None, sync=False, **options):
        qs = Source.objects.filter(enabled=True).order_by("slug")
        if sources:
            qs = qs.filter(slug__in=sources)
            unknown = set(sources) - set(qs.values_list("slug", flat=True))
            if unknown:
                raise CommandError(f"unknown or disabled source(s): {', '.join(sorted(unknown))}")
        who = None
        if customer:
            who = Customer.objects.filter(reference=customer).first()
            if who is None:
                raise CommandError(f"no customer {customer!r}")
        failed = 0
        for source in qs:
            run = extraction.request_extraction(source=source, customer=who,
                                                trigger=ExtractionRun.Trigger.MANUAL)
            if sync:
                run = extraction.run_synchronously(run=run)
                failed += run.status != ExtractionRun.Status.SUCCEEDED
                self.stdout.write(
                    f"{source.slug}: {run.status} — read {run.read}, created {run.created}, "
                    f"updated {run.updated}, unchanged {run.unchanged}, deleted {run.deleted}, "
                    f"rejected {run.rejected}, skipped {run.skipped}"
                    + (f" — {run.error}" if run.error else "")
                )
            else:
                self.stdout.write(f"{source.slug}: run {run.pk} {run.status}")
        if failed:
            raise CommandError(f"{failed} run(s) failed")
