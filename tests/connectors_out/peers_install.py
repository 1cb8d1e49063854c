"""Install the push tests' Node peers (Community Solid Server 7.2, armadietto) once, into a
cache dir shared by every checkout. `python -m tests.connectors_out.peers_install` (.ci/run does
it before the tests); the fixtures call it too, on first use. No Django import here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PEERS_DIR = Path(os.environ.get("RESTITUTION_PEERS_DIR", Path.home() / ".cache" / "restitution-peers"))
PEER_PACKAGES = ["@solid/community-server@7.2.0", "armadietto@0.6.6"]
BINARIES = ["community-solid-server", "armadietto"]


def npm_peers() -> Path:
    """The directory holding node_modules/ with both peers, installing them if missing."""
    bin_dir = PEERS_DIR / "node_modules" / ".bin"
    if not all((bin_dir / name).exists() for name in BINARIES):
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PEERS_DIR), *PEER_PACKAGES],
                       check=True, stdout=subprocess.DEVNULL, timeout=900)
    return PEERS_DIR


if __name__ == "__main__":
    print(f"peers ready in {npm_peers()}")
