"""Node tools the tests run (personal-cloud peers, their client libraries, OpenAPI linters),
installed once per machine into cache dirs shared by every checkout. No Django import here."""

from __future__ import annotations

import subprocess
from pathlib import Path


def npm_install(directory: Path, packages: list[str]) -> None:
    """`npm install` these exact package@version specs under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(directory), *packages],
                   check=True, stdout=subprocess.DEVNULL, timeout=900)


def ensure_binaries(directory: Path, packages: list[str], binaries: list[str]) -> Path:
    """`directory`/node_modules/.bin holding every binary named, installing the packages if one is missing."""
    bin_dir = directory / "node_modules" / ".bin"
    if not all((bin_dir / name).exists() for name in binaries):
        npm_install(directory, packages)
    return bin_dir
