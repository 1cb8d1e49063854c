"""Shared demo data for the tests: generated once per session, small unless said otherwise."""

from __future__ import annotations

from datetime import date

import pytest

from demo.generator import DemoManifest, generate

#: A short energy window around the autumn 2025 clock change (26 October).
AUTUMN_START, AUTUMN_END = date(2025, 10, 25), date(2025, 10, 27)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    """Six customers, every system, malformed rows, three days of metering."""
    return generate(tmp_path_factory.mktemp("small") / "demo", customers=6, seed=7,
                    energy_start=AUTUMN_START, energy_end=AUTUMN_END)


@pytest.fixture(scope="session")
def full_window_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    """One customer (alice), the default 13-month energy window, both clock changes."""
    return generate(tmp_path_factory.mktemp("full") / "demo", customers=1,
                    systems=("energy",))

