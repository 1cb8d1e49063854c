"""Credentials at rest: encrypted with the first key, readable with any, rotatable."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from restitution import crypto


@pytest.fixture
def keys(settings):
    def use(*values: str) -> None:
        settings.GATEWAY_ENCRYPTION_KEYS = list(values)
        crypto.reset_keys()

    yield use
    crypto.reset_keys()


def test_a_secret_is_stored_encrypted_and_reads_back(keys):
    keys(crypto.generate_key())
    stored = crypto.encrypt_json({"app_password": "s3cret-app-pass"})
    assert "s3cret" not in stored
    assert crypto.decrypt_json(stored) == {"app_password": "s3cret-app-pass"}


def test_keys_rotate_new_first_old_still_reads_then_can_be_dropped(keys):
    old, new = crypto.generate_key(), crypto.generate_key()
    keys(old)
    stored = crypto.encrypt("token-1")
    keys(new, old)
    assert crypto.decrypt(stored) == "token-1"
    rotated = crypto.rotate(stored)
    keys(new)
    assert crypto.decrypt(rotated) == "token-1"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored)


def test_production_refuses_to_run_without_a_key(keys, settings):
    settings.GATEWAY_MODE = "production"
    keys()
    with pytest.raises(ImproperlyConfigured, match="GATEWAY_ENCRYPTION_KEYS"):
        crypto.encrypt("x")


def test_a_malformed_key_is_a_configuration_error(keys):
    keys("not-a-fernet-key")
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x")


def test_the_rotate_command_re_encrypts_credentials_and_webhook_secrets(keys, personas, capsys):
    from connectors_out import delivery, webhooks
    from restitution.models import Dataset

    old, new = crypto.generate_key(), crypto.generate_key()
    keys(old)
    destination = delivery.connect_destination(
        customer=personas.alice, kind="webdav", label="x", settings_={"server": "https://dav.example", "username": "a"},
        credentials={"app_password": "pw"}, datasets=list(Dataset.objects.all()[:1]), duration="1m")
    endpoint, secret = webhooks.register_endpoint(client=personas.trusted, url="https://trusted.example/hook")
    keys(new, old)
    call_command("rotate_secrets")
    assert "1 destination credential(s) and 1 webhook secret(s)" in capsys.readouterr().out
    keys(new)
    destination.refresh_from_db()
    endpoint.refresh_from_db()
    assert crypto.decrypt_json(destination.credentials) == {"app_password": "pw"}
    assert webhooks.endpoint_secret(endpoint) == secret
