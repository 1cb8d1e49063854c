"""`manage.py setup_schedules`: the default beat schedules (editable afterwards in the admin).

Part of every deploy (after `migrate`): it adds the schedules a release brings and leaves the
ones that exist as operators left them (their timing, their enabled flag); only a task path a
release renamed is followed.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from restitution.models import Source


def _ensure(*, name: str, defaults: dict) -> PeriodicTask:
    """The periodic task `name`, created with `defaults` if missing; an existing one keeps its schedule."""
    task, created = PeriodicTask.objects.get_or_create(name=name, defaults=defaults)
    if not created and task.task != defaults["task"]:
        task.task = defaults["task"]
        task.save(update_fields=["task"])
    return task


class Command(BaseCommand):
    help = ("Create the periodic tasks: stalled-run recovery, grant and push-destination expiry every "
            "minute, the outbox relay every 10 seconds, a nightly run per source, nightly retention "
            "purges, hourly archive purges, a sweep of lost push deliveries every 5 minutes.")

    def handle(self, *args, **options):
        every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
        _ensure(
            name="recover stalled extraction runs",
            defaults={"task": "restitution.tasks.recover_stalled_runs", "interval": every_minute,
                      "crontab": None},
        )
        _ensure(
            name="expire grants",
            defaults={"task": "restitution.tasks.expire_grants", "interval": every_minute, "crontab": None},
        )
        nightly, _ = CrontabSchedule.objects.get_or_create(
            minute="30", hour="4", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Europe/Paris")
        _ensure(
            name="apply retention",
            defaults={"task": "restitution.tasks.apply_retention", "crontab": nightly, "interval": None},
        )
        hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
        _ensure(
            name="purge expired archives",
            defaults={"task": "restitution.tasks.purge_exports", "interval": hourly, "crontab": None},
        )
        _ensure(
            name="expire push destinations",
            defaults={"task": "connectors_out.tasks.expire_destinations", "interval": every_minute,
                      "crontab": None},
        )
        every_ten_seconds, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
        _ensure(
            name="relay the task outbox",
            defaults={"task": "restitution.tasks.relay_outbox", "interval": every_ten_seconds, "crontab": None},
        )
        every_5_minutes, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)
        _ensure(
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
