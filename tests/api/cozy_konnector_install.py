"""Install the Cozy konnector example's npm dependencies (cozy-konnector-libs, pinned, with its
git dependency `geco` overridden to the npm release) once, into a cache dir shared by every
checkout. `python -m tests.api.cozy_konnector_install` (.ci/run does it before the tests); the
test calls it too, on first use. No Django import here."""

from __future__ import annotations

import os
from pathlib import Path

from tests.npm_install import npm_ci_project

KONNECTOR = Path(__file__).resolve().parents[2] / "docs" / "examples" / "cozy-konnector"
KONNECTOR_DEPS_DIR = Path(os.environ.get("RESTITUTION_COZY_DIR", Path.home() / ".cache" / "restitution-cozy"))


def konnector_node_modules() -> Path:
    """The node_modules directory holding the konnector's dependencies, installing them if missing."""
    return npm_ci_project(KONNECTOR_DEPS_DIR, KONNECTOR)


if __name__ == "__main__":
    print(f"Cozy konnector dependencies ready in {konnector_node_modules()}")
