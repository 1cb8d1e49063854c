"""`manage.py setup_schedules`: the default beat schedules (editable afterwards in the admin)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from restitution.models import Source


class Command(BaseCommand):
    help = ("Create the periodic tasks: stalled-run recovery, grant and push-destination expiry every "
            "minute, the outbox relay every 10 seconds, a nightly run per source, nightly retention "
            "purges, hourly archive purges, a sweep of lost push deliveries every 5 minutes.")

    def handle(self, *args, **options):
        every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name="recover stalled extraction runs",
            defaults={"task": "restitution.tasks.recover_stalled_runs", "interval": every_minute,
                      "crontab": None},
        )
        PeriodicTask.objects.update_or_create(
            name="expire grants",
            defaults={"task": "restitution.tasks.expire_grants", "interval": every_minute, "crontab": None},
        )
        nightly, _ = CrontabSchedule.objects.get_or_create(
            minute="30", hour="4", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Europe/Paris")
        PeriodicTask.objects.update_or_create(
            name="apply retention",
            defaults={"task": "restitution.tasks.apply_retention", "crontab": nightly, "interval": None},
        )
        hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
        PeriodicTask.objects.update_or_create(
            name="purge expired archives",
            defaults={"task": "restitution.tasks.purge_exports", "interval": hourly, "crontab": None},
        )
        PeriodicTask.objects.update_or_create(
            name="expire push destinations",
            defaults={"task": "connectors_out.tasks.expire_destinations", "interval": every_minute,
                      "crontab": None},
        )
        every_ten_seconds, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name="relay the task outbox",
            defaults={"task": "restitution.tasks.relay_outbox", "interval": every_ten_seconds, "crontab": None},
        )
        every_5_minutes, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)
        PeriodicTask.objects.update_or_create(
            name="sweep lost push deliveries",
            defaults={"task": "connectors_out.tasks.sweep_deliveries", "interval": every_5_minutes,
                      "crontab": None},
        )
        for index, source in enumerate(Source.objects.order_by("slug")):
            # Stagger the nightly runs so the legacy systems are not all hit at once.
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=str((index * 20) % 60), hour=str(2 + (index * 20) // 60), day_of_week="*",
                day_of_month="*", month_of_year="*", timezone="Europe/Paris",
            )
            _, created = PeriodicTask.objects.get_or_create(
                name=f"nightly extraction: {source.slug}",
                defaults={"task": "restitution.tasks.extract_source", "crontab": crontab,
                          "args": json.dumps([source.pk])},
            )
            self.stdout.write(f"{source.slug}: {'scheduled' if created else 'already scheduled'}")
