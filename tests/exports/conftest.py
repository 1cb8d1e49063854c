"""Fixtures of the export tests: archives under a temporary MEDIA_ROOT, alice's and bob's records."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.test_records_api import _contract, _day_block, write
from tests.personas import CONTRACTS, CURVE


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def data(personas, media):
    """alice: 10 load-curve day blocks with 2 readings each (1 kW, the other half hours missing)
    and contracts A1, A2; bob: 3 day blocks of 1 reading (9.9 kW) and contract B1."""
    write(personas.alice, CURVE, [_day_block(d) for d in range(1, 11)])
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2")])
    write(personas.bob, CURVE, [_day_block(d, (6,), kw=9.9) for d in range(1, 4)])
    write(personas.bob, CONTRACTS, [_contract("B1")])
    return personas
