"""Default schedules exist and point at real tasks."""

import pytest
from celery import current_app
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from restitution.models import Source


@pytest.mark.django_db
def test_setup_schedules_creates_the_periodic_tasks_once():
    Source.objects.create(slug="insurer", name="Insurer", kind="sql", connection_env="X", identity_system="insurer")
    call_command("setup_schedules")
    call_command("setup_schedules")
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert names == {"recover stalled extraction runs", "expire grants", "relay the task outbox",
                     "nightly extraction: insurer", "apply retention", "purge expired archives",
                     "expire push destinations", "sweep lost push deliveries"}
    import connectors_out.tasks  # noqa: F401 - registers the tasks
    import restitution.tasks  # noqa: F401 - registers the tasks

    for task in PeriodicTask.objects.all():
        assert task.task in current_app.tasks


@pytest.mark.django_db
def test_running_setup_schedules_again_at_a_deploy_keeps_what_the_operator_changed():
    call_command("setup_schedules")
    retention = PeriodicTask.objects.get(name="apply retention")
    later, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="6", timezone="Europe/Paris")
    retention.crontab = later
    retention.save()
    PeriodicTask.objects.filter(name="expire grants").update(enabled=False)
    PeriodicTask.objects.filter(name="relay the task outbox").delete()  # a schedule a release adds

    call_command("setup_schedules")

    assert PeriodicTask.objects.get(name="apply retention").crontab == later
    assert PeriodicTask.objects.get(name="expire grants").enabled is False
    assert PeriodicTask.objects.get(name="relay the task outbox").interval.every == 10
