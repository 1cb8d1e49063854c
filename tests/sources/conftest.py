"""Fixtures shared by the source adapter tests (no Django database needed)."""

from __future__ import annotations

import pytest


class CountingLimiter:
    """A rate limiter that only counts how often the adapter asked to make a request."""

    def __init__(self) -> None:
        self.calls = 0

    def wait(self) -> None:
        self.calls += 1


@pytest.fixture
def limiter() -> CountingLimiter:
    return CountingLimiter()
