"""A request that meets an unreachable database gets 503 + Retry-After, not 500 (the fault
suite's scenario 3 shows it against a real PostgreSQL restart)."""

from __future__ import annotations

import json

import psycopg
from django.db import OperationalError
from django.test import RequestFactory

from restitution.web.middleware import DatabaseUnavailableMiddleware


def _unreachable() -> OperationalError:
    """The error a real connection attempt to a port where nothing listens gives."""
    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/none", connect_timeout=1)
    except psycopg.OperationalError as exc:
        return OperationalError(str(exc))
    raise AssertionError("something listens on port 1")


def test_an_unreachable_database_is_a_503_problem_with_retry_after():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get("/api/v1/datasets"), _unreachable())
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) > 0
    body = json.loads(response.content)
    assert body["code"] == "service_unavailable" and "127.0.0.1" not in body["detail"]


def test_other_errors_are_left_alone():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("a bug")) is None
