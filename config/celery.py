"""The Celery app: CELERY_-namespaced Django settings, tasks autodiscovered from the apps."""

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("restitution")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect(dispatch_uid="gateway-celery-logging")
def _log_like_the_gateway(**kwargs) -> None:
    """Worker and beat log through the gateway's LOGGING (JSON lines with request ids, credentials
    redacted) instead of Celery's plain-text handlers: with a receiver here, Celery sets up none."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
