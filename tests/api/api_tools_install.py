"""Install the OpenAPI linters (spectral, redocly) once, into a cache dir shared by every checkout.
`python -m tests.api.api_tools_install` (.ci/run does it before the tests); the tests call it
too, on first use. No Django import here."""

from __future__ import annotations

import os
from pathlib import Path

from tests.npm_install import ensure_binaries

TOOLS_DIR = Path(os.environ.get("RESTITUTION_API_TOOLS_DIR", Path.home() / ".cache" / "restitution-apitools"))
TOOL_PACKAGES = ["@stoplight/spectral-cli@6.16.3", "@redocly/cli@2.77.0"]
BINARIES = ["spectral", "redocly"]


def api_tools() -> Path:
    """The node_modules/.bin directory holding both linters, installing them if missing."""
    return ensure_binaries(TOOLS_DIR, TOOL_PACKAGES, BINARIES)


if __name__ == "__main__":
    print(f"OpenAPI linters ready in {api_tools()}")
