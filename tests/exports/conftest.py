"""Fixtures of the export tests: archives under a temporary MEDIA_ROOT, alice's and bob's records."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.test_records_api import _contract, _curve, write
from tests.personas import CONTRACTS, CURVE


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def data(personas, media):
    """alice: 20 load-curve readings over 10 days (1 kW) and contracts A1, A2; bob: 3 readings
    (9.9 kW) and contract B1."""
    write(personas.alice, CURVE, [_curve(d, h) for d in range(1, 11) for h in (0, 12)])
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2")])
    write(personas.bob, CURVE, [_curve(d, 6, kw=9.9) for d in range(1, 4)])
    write(personas.bob, CONTRACTS, [_contract("B1")])
    return personas
