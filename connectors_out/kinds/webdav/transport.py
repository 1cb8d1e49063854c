"""Nextcloud / WebDAV: JSON files under /remote.php/dav/files/{user}/{folder}/{dataset}/.

Authenticates with a Nextcloud app password (HTTP Basic), which the customer can revoke in
their Nextcloud security settings. Folders are created one level at a time (MKCOL), as WebDAV
requires. Never follows redirects with the credentials and never logs them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from ...base import Change, File, Transport, file_name, resource_name
from ...http import DeliveryError, check_response, http_client, network_error

DAV_FILES_PATH = "/remote.php/dav/files/"


def files_root(server: str, username: str) -> str:
    """The user's files collection, Nextcloud's layout (also served by the test server)."""
    return f"{server.rstrip('/')}{DAV_FILES_PATH}{quote(username, safe='')}/"


class WebDavTransport(Transport):
    kind = "webdav"

    def __init__(self, *, settings: dict[str, Any], credentials: dict[str, Any],
                 http: httpx.Client | None = None) -> None:
        super().__init__(settings=settings, credentials=credentials, http=http)
        self.http.auth = httpx.BasicAuth(settings["username"], credentials.get("app_password", ""))
        self.user_root = files_root(settings["server"], settings["username"])
        folder = "/".join(quote(part, safe="") for part in settings.get("folder", "").split("/") if part)
        self.root = f"{self.user_root}{folder}/" if folder else self.user_root
        self._collections: set[str] = set()

    def check(self) -> None:
        self.request("PROPFIND", self.user_root, what="open the files folder", headers={"Depth": "0"})

    def _collection(self, url: str) -> None:
        """Create a collection and its missing parents below the user's root (MKCOL)."""
        if url in self._collections or url == self.user_root:
            return
        parent = url[: url.rstrip("/").rfind("/") + 1]
        self._collection(parent)
        self._mkcol(url)
        self._collections.add(url)

    def _mkcol(self, url: str) -> None:
        try:
            response = self.http.request("MKCOL", url)
        except httpx.TransportError as exc:
            raise network_error(exc, "create a folder") from None
        if response.status_code != 405:  # 405: it is already there
            check_response(response, what="create a folder")

    def _dataset_url(self, dataset: str) -> str:
        return f"{self.root}{quote(dataset, safe='')}/"

    def put_record(self, change: Change) -> None:
        folder = self._dataset_url(change.dataset)
        self._collection(folder)
        body = json.dumps(change.document(), ensure_ascii=False, indent=1).encode()
        self.request("PUT", f"{folder}{resource_name(change.key)}.json", what="write a record",
                     content=body, headers={"Content-Type": "application/json"})

    def delete_record(self, change: Change) -> None:
        url = f"{self._dataset_url(change.dataset)}{resource_name(change.key)}.json"
        self.request("DELETE", url, what="remove a record", ok_missing=True)

    def put_file(self, file: File) -> None:
        folder = f"{self._dataset_url(file.dataset)}files/"
        self._collection(folder)
        self.request("PUT", f"{folder}{quote(file_name(file), safe='')}", what="write a document",
                     content=file.content, headers={"Content-Type": file.content_type})

    def delete_file(self, file: File) -> None:
        url = f"{self._dataset_url(file.dataset)}files/{quote(file_name(file), safe='')}"
        self.request("DELETE", url, what="remove a document", ok_missing=True)


# --- Nextcloud Login Flow v2: an app password without the customer typing one -------------------
# POST /index.php/login/v2 gives a login URL for the customer's browser and a poll endpoint;
# polling answers 404 until the customer has granted access, then once with the app password.

def login_flow_start(*, server: str, http: httpx.Client | None = None) -> dict[str, str]:
    """Start a login flow at the customer's Nextcloud: {login, endpoint, token}."""
    client = http or http_client()
    try:
        response = client.post(f"{server}/index.php/login/v2")
    except httpx.TransportError as exc:
        raise network_error(exc, "start the Nextcloud login") from None
    finally:
        if http is None:
            client.close()
    check_response(response, what="start the Nextcloud login")
    body = response.json()
    flow = {"login": body["login"], "endpoint": body["poll"]["endpoint"], "token": body["poll"]["token"]}
    # The poll goes back to the same server only (never to an address the answer chose).
    if not (flow["endpoint"].startswith(f"{server}/") and flow["login"].startswith(f"{server}/")):
        raise DeliveryError("start the Nextcloud login: answer points elsewhere", permanent=True)
    return flow


def login_flow_poll(*, endpoint: str, token: str, http: httpx.Client | None = None) -> dict[str, str] | None:
    """The app password once the customer granted access ({server, loginName, appPassword}), else None."""
    client = http or http_client()
    try:
        response = client.post(endpoint, data={"token": token})
    except httpx.TransportError as exc:
        raise network_error(exc, "finish the Nextcloud login") from None
    finally:
        if http is None:
            client.close()
    if response.status_code == 404:
        return None
    check_response(response, what="finish the Nextcloud login")
    return response.json()
