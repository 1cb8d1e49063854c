"""Node tools the tests run (personal-cloud peers, their client libraries, OpenAPI linters),
installed once per machine into cache dirs shared by every checkout. No Django import here."""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def install_lock(directory: Path) -> Iterator[None]:
    """Held while `directory` is checked and installed: parallel test workers (and other checkouts
    sharing the cache dir) finding it missing install it once, the others wait and find it done."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def npm_install(directory: Path, packages: list[str]) -> None:
    """`npm install` these exact package@version specs under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(directory), *packages],
                   check=True, stdout=subprocess.DEVNULL, timeout=900)


def ensure_binaries(directory: Path, packages: list[str], binaries: list[str]) -> Path:
    """`directory`/node_modules/.bin holding every binary named, installing the packages if one is missing."""
    bin_dir = directory / "node_modules" / ".bin"
    if all((bin_dir / name).exists() for name in binaries):
        return bin_dir
    with install_lock(directory):
        if not all((bin_dir / name).exists() for name in binaries):
            npm_install(directory, packages)
    return bin_dir


def npm_ci_project(directory: Path, project: Path) -> Path:
    """A project's own dependencies (its package.json, package-lock.json and .npmrc: overrides
    and npm settings apply only from the root project) installed with `npm ci` under
    `directory`, once per version of those files. Returns `directory`/node_modules."""
    import hashlib
    import shutil

    names = [n for n in ("package.json", "package-lock.json", ".npmrc") if (project / n).exists()]
    digest = hashlib.sha256(b"".join((project / n).read_bytes() for n in names)).hexdigest()
    stamp = directory / "node_modules" / ".installed-from"
    if stamp.exists() and stamp.read_text() == digest:
        return directory / "node_modules"
    with install_lock(directory):
        if not stamp.exists() or stamp.read_text() != digest:
            for name in names:
                shutil.copyfile(project / name, directory / name)
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=directory, check=True,
                           stdout=subprocess.DEVNULL, timeout=900)
            stamp.write_text(digest)
    return directory / "node_modules"
