"""Install the push tests' Node peers (Community Solid Server 7.2, armadietto) once, into a
cache dir shared by every checkout. `python -m tests.connectors_out.peers_install` (.ci/run does
it before the tests); the fixtures call it too, on first use. No Django import here."""

from __future__ import annotations

import os
from pathlib import Path

from tests.npm_install import ensure_binaries, install_lock, npm_install

PEERS_DIR = Path(os.environ.get("RESTITUTION_PEERS_DIR", Path.home() / ".cache" / "restitution-peers"))
PEER_PACKAGES = ["@solid/community-server@7.2.0", "armadietto@0.6.6"]
BINARIES = ["community-solid-server", "armadietto"]


def npm_peers() -> Path:
    """The directory holding node_modules/ with both peers, installing them if missing."""
    ensure_binaries(PEERS_DIR, PEER_PACKAGES, BINARIES)
    return PEERS_DIR


#: Client libraries of the clouds' own ecosystems, used to read back what the gateway wrote.
CLIENTS_DIR = Path(os.environ.get("RESTITUTION_CLIENTS_DIR", Path.home() / ".cache" / "restitution-clients"))
#: webfinger.js is pinned to 2.7.1 (within remotestorage.js's ^2.7.0): 2.8 ships an ES module that
#: Node 20's require() loads without a global object, and the library fails on it.
#: Solid apps read pods with @inrupt/solid-client, logged in through @inrupt/solid-client-authn-node
#: (4.0.0: the newest whose declared engines include Node 20; 5.x declares Node 22 and later).
CLIENT_PACKAGES = ["remotestoragejs@1.2.3", "webfinger.js@2.7.1", "@inrupt/solid-client@3.0.0",
                   "@inrupt/solid-client-authn-node@4.0.0"]


def _installed(package: str) -> bool:
    import json

    name, _, version = package.rpartition("@")  # "@scope/name@1.2.3" splits on the last "@"
    manifest = CLIENTS_DIR / "node_modules" / name / "package.json"
    return manifest.exists() and json.loads(manifest.read_text()).get("version") == version


def npm_clients() -> Path:
    """The directory holding node_modules/ with the clients' libraries, installing them if missing."""
    if not all(_installed(package) for package in CLIENT_PACKAGES):
        with install_lock(CLIENTS_DIR):
            if not all(_installed(package) for package in CLIENT_PACKAGES):
                npm_install(CLIENTS_DIR, CLIENT_PACKAGES)
    return CLIENTS_DIR


if __name__ == "__main__":
    print(f"peers ready in {npm_peers()}, clients in {npm_clients()}")
