"""remoteStorage: JSON documents under a category of the customer's storage
(draft-dejong-remotestorage), found by WebFinger (RFC 7033) and authorized by the customer in
their browser with OAuth 2.0's implicit grant (the protocol's only flow: the token comes back
in the URL fragment of the dashboard's callback page). Never logs the bearer token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from django.conf import settings as django_settings

from ...base import Change, File, Transport, file_name, resource_name
from ...http import DestinationURLError, check_destination_url, http_client

#: The category (top folder, and OAuth scope) the gateway asks for.
CATEGORY = "restitution"
#: The `@context` of every record, as remotestorage.js's `declareType` names a module's types
#: (`http://remotestorage.io/spec/modules/<module>/<type>`): apps recognise the documents by it.
RECORD_CONTEXT = f"http://remotestorage.io/spec/modules/{CATEGORY}/record"
STORAGE_RELS = ("http://tools.ietf.org/id/draft-dejong-remotestorage", "remotestorage")
AUTH_PROPERTY = "http://tools.ietf.org/html/rfc6749#section-4.2"


def binary_content_type(content_type: str) -> str:
    """The content type a document is stored with: remoteStorage apps read it through
    remotestorage.js, which returns a body as bytes only when its type says `charset=binary`
    (what the library itself sends for binary data) and decodes anything else as text."""
    if "charset=" in content_type.lower():
        return content_type
    return f"{content_type}; charset=binary"


@dataclass(frozen=True)
class Storage:
    address: str
    storage_root: str
    auth_endpoint: str


def discover(address: str, *, http: httpx.Client | None = None) -> Storage:
    """WebFinger lookup of user@host: the storage root and the authorization endpoint."""
    user, _, host = address.strip().partition("@")
    if not user or not host:
        raise DestinationURLError("Enter your remoteStorage address, like name@example.com.")
    schemes = ["https", "http"] if django_settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS else ["https"]
    client = http or http_client()
    try:
        for scheme in schemes:
            url = check_destination_url(f"{scheme}://{host}") + "/.well-known/webfinger"
            try:
                response = client.get(url, params={"resource": f"acct:{user}@{host}"})
            except httpx.TransportError:
                continue
            if response.status_code != 200:
                continue
            for link in response.json().get("links", []):
                if link.get("rel") in STORAGE_RELS and link.get("href"):
                    auth = (link.get("properties") or {}).get(AUTH_PROPERTY)
                    if not auth:
                        break
                    return Storage(address=f"{user}@{host}", storage_root=check_destination_url(link["href"]),
                                   auth_endpoint=check_destination_url(auth))
    finally:
        if http is None:
            client.close()
    raise DestinationURLError("No remoteStorage was found at this address.")


def authorization_url(*, storage: Storage, redirect_uri: str, state: str) -> str:
    """Where to send the customer's browser: the implicit grant, scoped to our category."""
    client_id = redirect_uri.split("/", 3)
    params = {"redirect_uri": redirect_uri, "client_id": "/".join(client_id[:3]), "scope": f"{CATEGORY}:rw",
              "response_type": "token", "state": state}
    separator = "&" if "?" in storage.auth_endpoint else "?"
    return f"{storage.auth_endpoint}{separator}{urlencode(params)}"


class RemoteStorageTransport(Transport):
    kind = "remotestorage"

    def __init__(self, *, settings: dict[str, Any], credentials: dict[str, Any],
                 http: httpx.Client | None = None) -> None:
        super().__init__(settings=settings, credentials=credentials, http=http)
        self.http.headers["Authorization"] = f"Bearer {credentials.get('access_token', '')}"
        self.root = f"{settings['storage_root'].rstrip('/')}/{settings.get('category', CATEGORY)}/"

    def check(self) -> None:
        self.request("GET", self.root, what="open the storage", ok_missing=True)

    def _url(self, dataset: str, name: str) -> str:
        return f"{self.root}{quote(dataset, safe='')}/{quote(name, safe='')}"

    def put_record(self, change: Change) -> None:
        self.request("PUT", self._url(change.dataset, f"{resource_name(change.key)}.json"), what="write a record",
                     content=json.dumps({"@context": RECORD_CONTEXT, **change.document()}, ensure_ascii=False).encode(),
                     headers={"Content-Type": "application/json; charset=utf-8"})

    def delete_record(self, change: Change) -> None:
        self.request("DELETE", self._url(change.dataset, f"{resource_name(change.key)}.json"),
                     what="remove a record", ok_missing=True)

    def _file_url(self, file: File) -> str:
        return f"{self.root}{quote(file.dataset, safe='')}/files/{quote(file_name(file), safe='')}"

    def delete_file(self, file: File) -> None:
        self.request("DELETE", self._file_url(file), what="remove a document", ok_missing=True)

    def put_file(self, file: File) -> None:
        self.request("PUT", self._file_url(file), what="write a document", content=file.content,
                     headers={"Content-Type": binary_content_type(file.content_type)})

