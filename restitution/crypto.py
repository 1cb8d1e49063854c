"""Encryption at rest for secrets the gateway must keep (destination credentials, webhook secrets).

Keys come from GATEWAY_ENCRYPTION_KEYS (comma-separated Fernet keys): the first encrypts, all
decrypt, so a key is rotated by putting a new one first, running `manage.py rotate_secrets`,
then dropping the old one. This module never logs or returns a key, and never stores one.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(ValueError):
    """A ciphertext that no configured key opens (a key was dropped too early, or tampering)."""


def generate_key() -> str:
    """A new random key, in the form GATEWAY_ENCRYPTION_KEYS expects."""
    return Fernet.generate_key().decode()


@cache
def _fernet() -> MultiFernet:
    # Embedded and test modes without the variable get the installation's own random key
    # (config/settings.py, kept under GATEWAY_VAR_DIR); production must configure one.
    keys = list(getattr(settings, "GATEWAY_ENCRYPTION_KEYS", []) or [])
    if not keys:
        raise ImproperlyConfigured(
            "GATEWAY_ENCRYPTION_KEYS must hold at least one Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
        )
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("GATEWAY_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                                   "(32 url-safe base64-encoded bytes)") from exc


def reset_keys() -> None:
    """Forget the cached keys (after the settings changed: tests, a reload)."""
    _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise DecryptionError("no configured key decrypts this value") from None


def encrypt_json(value: dict[str, Any]) -> str:
    return encrypt(json.dumps(value, separators=(",", ":")))


def decrypt_json(ciphertext: str) -> dict[str, Any]:
    return json.loads(decrypt(ciphertext)) if ciphertext else {}


def rotate(ciphertext: str) -> str:
    """The same secret, encrypted again with the first (newest) key."""
    try:
        return _fernet().rotate(ciphertext.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise DecryptionError("no configured key decrypts this value") from None
