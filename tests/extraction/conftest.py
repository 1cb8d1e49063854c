"""Fixtures shared by the extraction tests."""

from __future__ import annotations

import pytest

from demo.install import install_demo
from tests.conftest import TELCO_TOKEN, demo_env_for


@pytest.fixture
def sharded(settings):
    settings.GATEWAY_RUN_SHARD_CUSTOMERS = 1  # the demo's few customers: one shard each
    return settings


@pytest.fixture
def sharded_demo(fresh_demo_dir, flush_gate, sharded, monkeypatch):
    """A private demo installed, every batch run sharded one customer per shard."""
    from demo.telco_server import serve_in_thread

    # A telco service that answers at once: these tests are about shards, not flaky networks.
    server, url = serve_in_thread(fresh_demo_dir / "telco", token=TELCO_TOKEN, delay_seconds=0.0)
    for name, value in demo_env_for(fresh_demo_dir, url).items():
        monkeypatch.setenv(name, value)
    install_demo(fresh_demo_dir, with_users=False)
    yield fresh_demo_dir
    server.shutdown()
