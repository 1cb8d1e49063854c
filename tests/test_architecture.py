"""docs/architecture.md names every product module, and the import contracts hold and bite."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def contract_sources(contract: str) -> set[str]:
    """The source_modules of one contract of .importlinter."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter", encoding="utf-8")
    return set(parser[f"importlinter:contract:{contract}"]["source_modules"].split())


def test_the_domain_contract_names_every_module_of_restitution_but_the_api_and_the_pages():
    children = {entry.stem for entry in (ROOT / "restitution").iterdir()
                if (entry.suffix == ".py" and entry.name != "__init__.py") or (entry / "__init__.py").exists()}
    expected = {f"restitution.{name}" for name in children - {"api", "web"}}
    assert contract_sources("domain-never-imports-its-callers") == expected


@pytest.fixture(scope="module")
def product_copy(tmp_path_factory) -> Path:
    """A copy of the product and the demo, for the contracts to judge with one import added."""
    where = tmp_path_factory.mktemp("tree")
    for package in ("config", "connectors_out", "demo", "restitution"):
        shutil.copytree(ROOT / package, where / package, ignore=shutil.ignore_patterns(
            "__pycache__", "locale", "templates", "static", "migrations"))
    for package in ("restitution", "connectors_out"):
        (where / package / "migrations").mkdir()
        (where / package / "migrations" / "__init__.py").write_text("")
    return where


def _with_import(tree: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """lint-imports on the tree with `line` added inside a function of `module` (then removed)."""
    path = tree / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + f"\n\ndef _added():\n    {line}\n", encoding="utf-8")
    try:
        return lint_imports(tree)
    finally:
        path.write_text(original, encoding="utf-8")


def test_the_copy_of_the_product_is_accepted_as_it_is(product_copy):
    assert lint_imports(product_copy).returncode == 0


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("restitution/catalogue.py", "from demo.install import install_demo",
     "restitution.catalogue -> demo.install"),
    ("restitution/consent.py", "from connectors_out.webhooks import notify_grant_revoked",
     "restitution.consent -> connectors_out.webhooks"),
    ("restitution/observability.py", "from restitution.web.middleware import RequestIdMiddleware",
     "restitution.observability -> restitution.web.middleware"),
    ("connectors_out/webhooks.py", "from restitution.api.views import GrantedTokenView",
     "connectors_out.webhooks -> restitution.api.views"),
    ("restitution/runs.py", "from restitution.extraction import execute_run",
     "restitution.runs -> restitution.extraction"),
    ("restitution/web/views.py", "from connectors_out.models import Destination",
     "restitution.web.views -> connectors_out.models"),
    ("restitution/outbox.py", "from restitution.runs import ACTIVE",  # runs.py imports outbox.py
     "No cycles are allowed in restitution."),
    ("restitution/metrics.py", "from restitution.audit import write_access_events",
     "restitution.metrics -> restitution.audit"),
    ("restitution/observability.py", "from restitution.access_log import AccessLogMiddleware",
     "restitution.observability -> restitution.access_log"),
])
def test_the_contracts_refuse_an_import_that_breaks_a_rule(product_copy, module, line, broken):
    result = _with_import(product_copy, module, line)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout[-3000:]
