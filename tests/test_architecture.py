"""docs/architecture.md names every product module, and the import contracts hold and bite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("config", "restitution", "connectors_out")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def product_modules() -> set[str]:
    """Each product package's modules and subpackages (`restitution/store.py`, `restitution/api/`),
    without package markers and migrations."""
    found = set()
    for package in PRODUCT:
        for entry in (ROOT / package).iterdir():
            if entry.suffix == ".py" and entry.name != "__init__.py":
                found.add(f"{package}/{entry.name}")
            elif (entry / "__init__.py").exists() and entry.name != "migrations":
                found.add(f"{package}/{entry.name}/")
    return found


def documented_paths() -> set[str]:
    """The paths of the layout table of docs/architecture.md (its rows' first cells)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    return {path for cell in re.findall(r"^\| ([^|]+) \|", text, re.MULTILINE)
            for path in re.findall(r"`([^`]+)`", cell)}


def test_the_architecture_doc_names_every_product_module():
    assert sorted(product_modules() - documented_paths()) == []


def test_the_architecture_doc_names_no_module_that_does_not_exist():
    assert sorted(path for path in documented_paths() if not (ROOT / path).exists()) == []


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache", str(ROOT / ".importlinter")],
                          cwd=where, env={**os.environ, "PYTHONPATH": str(where)},
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_the_contracts_refuse_a_product_module_that_imports_the_demo(tmp_path):
    for package in ("config", "connectors_out", "demo", "restitution", "restitution/api", "restitution/web",
                    "restitution/sources", "restitution/tasks"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "demo" / "install.py").write_text("def install_demo(): ...\n")
    assert lint_imports(tmp_path).returncode == 0  # the same tree without the import is accepted

    (tmp_path / "restitution" / "setup.py").write_text("from demo.install import install_demo\n")
    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "restitution.setup -> demo.install" in result.stdout
