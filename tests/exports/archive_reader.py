"""Reading an archive back, as a client would: every file checked against the manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from typing import Any


def open_checked(content: bytes) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    """The archive and its manifest, after checking every listed file's size and SHA-256 and that
    nothing unlisted is in the archive."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(archive.namelist()) == set(listed) | {"manifest.json"}
    for path, entry in listed.items():
        body = archive.read(path)
        assert len(body) == entry["size"], path
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], path
    return archive, manifest


def ndjson_items(archive: zipfile.ZipFile, slug: str) -> list[dict[str, Any]]:
    text = archive.read(f"{slug}/records.ndjson").decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


def csv_rows(archive: zipfile.ZipFile, slug: str) -> list[dict[str, str]]:
    text = archive.read(f"{slug}/records.csv").decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))
