"""Encryption at rest for secrets the gateway must keep (destination credentials, webhook secrets),
and the public-key signature of the customer's history.

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
    _history_keys.cache_clear()


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


# --- The history's public-key signature ------------------------------------------------------
# The customer's downloaded history (docs/history.md) carries its head signed with Ed25519, as a
# JWT any JOSE library verifies with the public keys published at
# /.well-known/restitution-history-keys (a JWK Set). Keys: GATEWAY_HISTORY_SIGNING_KEYS
# (comma-separated base64url 32-byte Ed25519 seeds; the first signs, all are published, so a key
# is rotated by putting a new one first and dropping the old one once no copy needs it), or one
# derived from the installation's secret key (HKDF-SHA256) when none is configured.

HISTORY_JWT_TYP = "history-head+jwt"


def _b64url(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@cache
def _history_keys() -> tuple:
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    seeds = list(getattr(settings, "GATEWAY_HISTORY_SIGNING_KEYS", []) or [])
    keys = []
    for seed in seeds:
        try:
            raw = base64.urlsafe_b64decode(seed + "=" * (-len(seed) % 4))
            keys.append(Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError as exc:
            raise ImproperlyConfigured("GATEWAY_HISTORY_SIGNING_KEYS holds a value that is not a base64url "
                                       "32-byte Ed25519 seed") from exc
    if not keys:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"restitution.history.ed25519").derive(settings.SECRET_KEY.encode())
        keys.append(Ed25519PrivateKey.from_private_bytes(derived))
    return tuple(keys)


def generate_history_key() -> str:
    """A new random seed, in the form GATEWAY_HISTORY_SIGNING_KEYS expects."""
    import os

    return _b64url(os.urandom(32))


def _public_jwk(key) -> dict[str, str]:
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    x = _b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    # RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order, no spaces.
    thumbprint = hashlib.sha256(json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x},
                                           separators=(",", ":"), sort_keys=True).encode()).digest()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": _b64url(thumbprint), "use": "sig", "alg": "EdDSA"}


def history_jwks() -> dict[str, list[dict[str, str]]]:
    """The public keys that verify history heads (RFC 7517 JWK Set)."""
    return {"keys": [_public_jwk(key) for key in _history_keys()]}


def sign_history_head(claims: dict[str, Any]) -> str:
    """`claims` as a compact JWS (RFC 7515) signed with the current key, EdDSA (RFC 8037)."""
    import jwt

    key = _history_keys()[0]
    return jwt.encode(claims, key, algorithm="EdDSA",
                      headers={"kid": _public_jwk(key)["kid"], "typ": HISTORY_JWT_TYP})
