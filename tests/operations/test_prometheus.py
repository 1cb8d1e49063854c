"""/metrics: django-prometheus plus the gateway's own figures, only for the scraper's token or
an operator."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from connectors_out.models import Delivery, DeliveryAttempt, Destination
from restitution.models import ExtractionRun, Source
from tests.personas import CURVE

TOKEN = "scraper-token-0123456789-abcdefghijklmnop"  # noqa: S105


def _scrape(settings, **headers) -> Client:
    settings.GATEWAY_METRICS_TOKEN = TOKEN
    return Client().get("/metrics", **headers)


def _samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def test_the_scraper_reads_gateway_and_django_metrics(personas, flow, settings):
    source = Source.objects.create(slug="metering", name="Metering", kind="csv", connection_env="X",
                                   identity_system="pdl")
    ExtractionRun.objects.create(source=source, status="succeeded", read=10, created=7, rejected=3)
    ExtractionRun.objects.create(source=source, status="failed", read=2, rejected=2)
    tokens = flow.tokens()
    assert flow.me(tokens["access_token"]).status_code == 200
    destination = Destination.objects.create(receipt_id=uuid.uuid4(), customer=personas.alice,
                                             kind="webdav", label="Cloud", duration="1m",
                                             expires_at=timezone.now() + timedelta(days=30))
    delivered = Delivery.objects.create(destination=destination, status="succeeded")
    DeliveryAttempt.objects.create(delivery=delivered, number=1, outcome="transient", status_code=503)
    DeliveryAttempt.objects.create(delivery=delivered, number=2, outcome="succeeded", status_code=201)
    Delivery.objects.create(destination=destination, status="queued")
    response = _scrape(settings, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    samples = _samples(response.content.decode())
    assert samples['gateway_extraction_runs_total{source="metering",status="succeeded"}'] == 1
    assert samples['gateway_extraction_runs_total{source="metering",status="failed"}'] == 1
    assert samples['gateway_extraction_rows_total{outcome="read",source="metering"}'] == 12
    assert samples['gateway_extraction_rows_total{outcome="rejected",source="metering"}'] == 5
    assert samples['gateway_grants{status="active"}'] == 1
    assert samples['gateway_grants_created_total{duration="ongoing"}'] == 1
    assert samples['gateway_api_request_duration_seconds_count{tier="high-priority"}'] >= 1
    assert samples['gateway_deliveries{connector="webdav",status="succeeded"}'] == 1
    assert samples['gateway_deliveries{connector="webdav",status="queued"}'] == 1
    assert samples['gateway_delivery_attempts_total{connector="webdav",outcome="transient"}'] == 1
    assert samples['gateway_delivery_attempts_total{connector="webdav",outcome="succeeded"}'] == 1
    assert any(name.startswith("django_http_requests_total_by_method_total") for name in samples)
    assert 'gateway_queue_depth{queue="extraction"}' in samples
    assert CURVE not in response.content.decode() and "C-ALICE" not in response.content.decode()


def test_queue_depth_counts_the_messages_waiting(db, settings):
    from config.celery import app
    from restitution.observability import queue_depths
    from tests.conftest import missing, on_real_services

    if not on_real_services():
        missing("needs PostgreSQL and Redis")
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("extraction")
    before = queue_depths()["extraction"]
    for _ in range(3):  # no worker listens in this test: they wait
        app.send_task("restitution.tasks.run_extraction", args=[0], queue="extraction")
    try:
        assert queue_depths()["extraction"] == before + 3
        scraped = _samples(_scrape(settings, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
        assert scraped['gateway_queue_depth{queue="extraction"}'] == before + 3
    finally:
        broker.delete("extraction")


def test_metrics_are_refused_without_the_token(personas, flow, settings):
    assert _scrape(settings).status_code == 401
    assert _scrape(settings, HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    tokens = flow.tokens()  # a PIMS client's access token is no metrics token
    assert _scrape(settings, HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401
    customer = Client()
    customer.force_login(personas.alice.user, backend="django.contrib.auth.backends.ModelBackend")
    assert customer.get("/metrics").status_code == 401
    settings.GATEWAY_METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_an_operator_session_reads_them(db):
    admin = get_user_model().objects.create_superuser("root", "root@holder.example", "pw")
    browser = Client()
    browser.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    assert browser.get("/metrics").status_code == 200
