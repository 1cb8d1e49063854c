"""The Celery app: CELERY_-namespaced Django settings, tasks autodiscovered from the apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("restitution")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
