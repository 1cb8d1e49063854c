"""The local-folder kind: its transport, its form, its kind (no pages of its own)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django import forms

from connectors_out.base import Change, File, Transport, file_name, resource_name
from connectors_out.forms import DestinationForm
from connectors_out.http import ADVICE_MISSING, ADVICE_REAUTHORIZE, DeliveryError
from connectors_out.kinds import Kind, Renewable

KEY_FILE = ".gateway-key"


class LocalFolderTransport(Transport):
    kind = "localfolder"

    def __init__(self, *, settings: dict[str, Any], credentials: dict[str, Any], http: Any = None) -> None:
        super().__init__(settings=settings, credentials=credentials, http=http)
        self.root = Path(settings["folder"])

    def check(self) -> None:
        key = self.root / KEY_FILE
        if not key.is_file():
            raise DeliveryError("no key file", permanent=True, advice=ADVICE_MISSING)
        if key.read_text().strip() != self.credentials.get("key"):
            raise DeliveryError("wrong key", permanent=True, advice=ADVICE_REAUTHORIZE)

    def _record(self, change: Change) -> Path:
        return self.root / change.dataset / f"{resource_name(change.key)}.json"

    def put_record(self, change: Change) -> None:
        self.check()
        path = self._record(change)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(change.document()))

    def delete_record(self, change: Change) -> None:
        self.check()
        self._record(change).unlink(missing_ok=True)

    def put_file(self, file: File) -> None:
        self.check()
        path = self.root / file.dataset / "files" / file_name(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.content)


    def delete_file(self, file: File) -> None:
        self.check()
        (self.root / file.dataset / "files" / file_name(file)).unlink(missing_ok=True)


class LocalFolderForm(DestinationForm):
    folder = forms.CharField(max_length=500)
    key = forms.CharField(max_length=100, widget=forms.PasswordInput)

    def connection(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"folder": self.cleaned_data["folder"]}, {"key": self.cleaned_data["key"]}


class LocalFolder(Kind):
    name = "localfolder"
    label = "Local folder (tests)"
    transport = LocalFolderTransport
    form = LocalFolderForm
    renewable = (Renewable("key", "Folder key"),)

    def describe(self, settings_: dict[str, Any]) -> str:
        return settings_["folder"]


KIND = LocalFolder()
