"""Cozy: documents written with `PUT /data/:doctype/:id` under stable ids (a re-push updates,
never duplicates), files through the files API, as a client the customer authorized.

The gateway registers itself as an OAuth client of the customer's Cozy (`POST /auth/register`),
sends the customer to `/auth/authorize`, exchanges the code at `/auth/access_token`, and
refreshes the access token when it expires. Never logs tokens, secrets or record contents.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from django.conf import settings as django_settings

from ...base import Change, File, Transport, file_name
from ...http import ADVICE_REAUTHORIZE, DeliveryError, check_response, http_client, network_error

SOFTWARE_ID = "restitution-gateway"
ROOT_DIR_ID = "io.cozy.files.root-dir"
FILES_DOCTYPE = "io.cozy.files"
BILLS_DOCTYPE = "io.cozy.bills"
#: Record fields that make a record with a file a bill (the first one present is the amount).
AMOUNT_FIELDS = ("amount_incl_tax", "amount")
#: Where the records' files go in the customer's Cozy drive.
FILES_FOLDER = "Restitution"
#: Records of dataset `a-b` are documents of doctype `org.restitution.a_b`.
DOCTYPE_PREFIX = "org.restitution"


def doctype(dataset: str) -> str:
    """The doctype of a dataset's records: `<prefix>.<slug with _ for ->`."""
    return f"{DOCTYPE_PREFIX}.{dataset.replace('-', '_')}"


def scope_for(datasets: list[str]) -> str:
    """Cozy permissions: each dataset's doctype, the files API for documents, bills for invoices."""
    return " ".join([*(doctype(d) for d in sorted(datasets)), FILES_DOCTYPE, BILLS_DOCTYPE])


def document_id(dataset: str, key: str) -> str:
    """A stable id per record: the same record always lands on the same document."""
    return hashlib.sha256(f"{dataset}\x1f{key}".encode()).hexdigest()[:32]


def register_client(*, instance: str, redirect_uri: str, client_name: str,
                    http: httpx.Client | None = None) -> dict[str, Any]:
    """OAuth dynamic registration at the customer's Cozy; returns the client's credentials."""
    client = http or http_client()
    try:
        response = client.post(f"{instance}/auth/register", headers={"Accept": "application/json"}, json={
            "redirect_uris": [redirect_uri], "client_name": client_name, "software_id": SOFTWARE_ID,
            "client_kind": "web"})
    except httpx.TransportError as exc:
        raise network_error(exc, "register at the Cozy") from None
    finally:
        if http is None:
            client.close()
    check_response(response, what="register at the Cozy")
    body = response.json()
    return {key: body[key] for key in ("client_id", "client_secret", "registration_access_token")}


def authorization_url(*, instance: str, client_id: str, redirect_uri: str, scope: str, state: str) -> str:
    return f"{instance}/auth/authorize?" + urlencode({
        "client_id": client_id, "response_type": "code", "scope": scope, "state": state,
        "redirect_uri": redirect_uri})


def exchange_code(*, instance: str, credentials: dict[str, Any], code: str,
                  http: httpx.Client | None = None) -> dict[str, Any]:
    """The authorization code → access and refresh tokens (kept with the client's credentials)."""
    return {**credentials, **_token_request(instance, credentials, {"grant_type": "authorization_code",
                                                                    "code": code}, http)}


def _token_request(instance: str, credentials: dict[str, Any], form: dict[str, str],
                   http: httpx.Client | None) -> dict[str, Any]:
    client = http or http_client()
    try:
        response = client.post(f"{instance}/auth/access_token", headers={"Accept": "application/json"}, data={
            **form, "client_id": credentials["client_id"], "client_secret": credentials["client_secret"]})
    except httpx.TransportError as exc:
        raise network_error(exc, "get an access token") from None
    finally:
        if http is None:
            client.close()
    if response.status_code in (400, 401, 403):  # the client or its refresh token was revoked
        raise DeliveryError(f"get an access token: HTTP {response.status_code}", permanent=True,
                            status_code=response.status_code, advice=ADVICE_REAUTHORIZE)
    check_response(response, what="get an access token")
    body = response.json()
    tokens = {"access_token": body["access_token"]}
    if body.get("refresh_token"):
        tokens["refresh_token"] = body["refresh_token"]
    return tokens


class CozyTransport(Transport):
    kind = "cozy"

    def __init__(self, *, settings: dict[str, Any], credentials: dict[str, Any],
                 http: httpx.Client | None = None) -> None:
        super().__init__(settings=settings, credentials=credentials, http=http)
        self.instance = settings["instance"].rstrip("/")
        self._folders: dict[str, str] = {}

    def _call(self, method: str, path: str, *, what: str, ok_missing: bool = False,
              ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        for attempt in (1, 2):
            headers = {"Accept": "application/json", **kwargs.get("headers", {}),
                       "Authorization": f"Bearer {self.credentials.get('access_token', '')}"}
            try:
                response = self.http.request(method, f"{self.instance}{path}",
                                             **{**kwargs, "headers": headers})
            except httpx.TransportError as exc:
                raise network_error(exc, what) from None
            if response.status_code == 401 and attempt == 1 and self.credentials.get("refresh_token"):
                self._refresh()
                continue
            if response.status_code in ok:
                return response
            return check_response(response, what=what, ok_missing=ok_missing)
        raise AssertionError("unreachable")

    def _refresh(self) -> None:
        tokens = _token_request(self.instance, self.credentials,
                                {"grant_type": "refresh_token", "refresh_token": self.credentials["refresh_token"]},
                                self.http)
        self.credentials.update(tokens)
        self.renewed_credentials = dict(self.credentials)

    def check(self) -> None:
        self._call("GET", f"/files/{ROOT_DIR_ID}", what="open the Cozy", ok_missing=True)

    def _doc_path(self, dataset: str, key: str) -> str:
        return f"/data/{quote(doctype(dataset), safe='')}/{document_id(dataset, key)}"

    def _rev(self, path: str) -> str | None:
        response = self._call("GET", path, what="read a document", ok_missing=True)
        return None if response.status_code in (404, 410) else response.json().get("_rev")

    def put_record(self, change: Change) -> None:
        self._put_document(self._doc_path(change.dataset, change.key), change.document())

    def _put_document(self, path: str, document: dict[str, Any]) -> None:
        for _ in range(3):  # a 409 means the revision moved meanwhile: read it again
            body = dict(document)
            rev = self._rev(path)
            if rev:
                body["_rev"] = rev
            response = self._call("PUT", path, what="write a record", ok=(409,),
                                  content=json.dumps(body, ensure_ascii=False).encode(),
                                  headers={"Content-Type": "application/json"})
            if response.status_code != 409:
                return
        raise DeliveryError("write a record: HTTP 409", permanent=False, status_code=409)

    def delete_record(self, change: Change) -> None:
        self._delete_document(self._doc_path(change.dataset, change.key))
        # the record's bill goes with it (its files are removed by delete_file)
        self._delete_document(f"/data/{BILLS_DOCTYPE}/{document_id(change.dataset, change.key)}")

    def _delete_document(self, path: str) -> None:
        rev = self._rev(path)
        if rev:
            self._call("DELETE", f"{path}?rev={quote(rev)}", what="remove a record", ok_missing=True)

    def delete_file(self, file: File) -> None:
        """Into the Cozy's trash (`DELETE /files/:id`), where the owner may still restore it."""
        found = self._call("GET", "/files/metadata?" + urlencode(
            {"Path": f"/{FILES_FOLDER}/{file.dataset}/{file_name(file)}"}), what="find a document", ok_missing=True)
        if found.status_code == 200:
            self._call("DELETE", f"/files/{quote(found.json()['data']['id'], safe='')}", what="remove a document",
                       ok_missing=True)

    def _folder(self, path: str) -> str:
        """The id of a drive folder, created (with its parents) when missing."""
        if path in self._folders:
            return self._folders[path]
        response = self._call("GET", "/files/metadata?" + urlencode({"Path": path}), what="find a folder",
                              ok_missing=True)
        if response.status_code == 200:
            folder_id = response.json()["data"]["id"]
        else:
            parent, _, name = path.rpartition("/")
            parent_id = self._folder(parent) if parent else ROOT_DIR_ID
            created = self._call("POST", f"/files/{parent_id}?" + urlencode({"Type": "directory", "Name": name}),
                                 what="create a folder")
            folder_id = created.json()["data"]["id"]
        self._folders[path] = folder_id
        return folder_id

    def put_file(self, file: File) -> None:
        folder = self._folder(f"/{FILES_FOLDER}/{file.dataset}")
        md5 = base64.b64encode(hashlib.md5(file.content).digest()).decode()  # noqa: S324 - integrity, not security
        name = file_name(file)
        # 409: this name (content hash inside) is already there — same bytes, nothing to write.
        created = self._call("POST", f"/files/{folder}?" + urlencode({"Type": "file", "Name": name}),
                             what="write a document", ok=(409,), content=file.content,
                             headers={"Content-Type": file.content_type, "Content-MD5": md5})
        if created.status_code == 409:
            created = self._call("GET", "/files/metadata?" + urlencode(
                {"Path": f"/{FILES_FOLDER}/{file.dataset}/{name}"}), what="find a document")
        self._put_bill(file, created.json()["data"]["id"])

    def _put_bill(self, file: File, file_id: str) -> None:
        """An invoice's file becomes an `io.cozy.bills` document linked to it (stable id too)."""
        data = file.record.data if file.record is not None and isinstance(file.record.data, dict) else {}
        amount = next((data[f] for f in AMOUNT_FIELDS if isinstance(data.get(f), int | float)), None)
        if amount is None:
            return
        bill = {"vendor": django_settings.GATEWAY_HOLDER_NAME, "date": file.record.date, "amount": amount,
                "currency": data.get("currency", "EUR"), "invoice": f"{FILES_DOCTYPE}:{file_id}",
                "restitution": {"dataset": file.dataset, "key": file.key}}
        self._put_document(f"/data/{BILLS_DOCTYPE}/{document_id(file.dataset, file.key)}", bill)
