"""Solid pod: JSON-LD resources (and the records' files) in a container the customer chose,
written over LDP with Solid-OIDC DPoP-bound access tokens.

The gateway authenticates with client credentials the customer created at their pod provider
(Community Solid Server and Inrupt's server offer them; they are not in the Solid-OIDC spec):
a token request with a DPoP proof gives a short-lived DPoP-bound token, sent with a fresh
proof on every request (RFC 9449). Never logs tokens, secrets or record contents.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ...base import Change, File, Transport, file_name, resource_name
from ...http import ADVICE_REAUTHORIZE, DeliveryError, check_response, network_error
from . import linked_data
from .linked_data import record_class

SOLID_TERMS = "http://www.w3.org/ns/solid/terms#"
PIM_SPACE = "http://www.w3.org/ns/pim/space#"
#: Where the gateway creates a private type index when the pod has none (beside the records).
TYPE_INDEX_NAME = "privateTypeIndex.ttl"


def __getattr__(name: str) -> Any:
    # RECORD_CLASS: the class the records' containers are registered for in the pod's type index,
    # in the project vocabulary under the issuer (read from the settings when asked)
    if name == "RECORD_CLASS":
        return record_class()
    raise AttributeError(name)


def record_subject(record_url: str) -> str:
    """The record's one subject, shared by its JSON-LD and its Turtle: `<record>.jsonld#it`."""
    return f"{record_url}#it"


def turtle(change: Change, subject: str) -> str:
    """The record as Turtle: the same graph as its JSON-LD, for the Solid apps that read Turtle only."""
    return linked_data.turtle(linked_data.describe(change, subject))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DPoPKey:
    """An ephemeral P-256 key that signs DPoP proofs (RFC 9449 §4) for one delivery."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        numbers = self._key.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x.to_bytes(32, "big")),
                    "y": _b64(numbers.y.to_bytes(32, "big"))}

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        parts = urlsplit(url)
        claims: dict[str, Any] = {"htm": method, "htu": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
                                  "iat": int(time.time()), "jti": uuid.uuid4().hex}
        if access_token:  # RFC 9449 §4.2: the hash of the token the proof goes with
            claims["ath"] = _b64(hashlib.sha256(access_token.encode()).digest())
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class SolidTransport(Transport):
    kind = "solid"

    def __init__(self, *, settings: dict[str, Any], credentials: dict[str, Any],
                 http: httpx.Client | None = None) -> None:
        super().__init__(settings=settings, credentials=credentials, http=http)
        self.container = settings["container"].rstrip("/") + "/"
        parts = urlsplit(self.container)
        self.issuer = (settings.get("issuer") or f"{parts.scheme}://{parts.netloc}").rstrip("/") + "/"
        self._dpop = DPoPKey()
        self._token: str | None = None
        self._registered: set[str] = set()
        self._type_index: str | None = None

    # --- authentication ---
    def _fetch_token(self) -> str:
        config = self.request("GET", f"{self.issuer}.well-known/openid-configuration",
                              what="discover the pod's identity provider").json()
        endpoint = config["token_endpoint"]
        auth = (quote(self.credentials.get("client_id", ""), safe=""),
                quote(self.credentials.get("client_secret", ""), safe=""))
        try:
            response = self.http.post(endpoint, auth=auth, headers={"DPoP": self._dpop.proof("POST", endpoint)},
                                      data={"grant_type": "client_credentials", "scope": "webid"})
        except httpx.TransportError as exc:
            raise network_error(exc, "get an access token") from None
        if response.status_code in (400, 401, 403):
            # invalid_client: the customer deleted the credentials at their pod provider.
            raise DeliveryError(f"get an access token: HTTP {response.status_code}", permanent=True,
                                status_code=response.status_code, advice=ADVICE_REAUTHORIZE)
        check_response(response, what="get an access token")
        return response.json()["access_token"]

    def _call(self, method: str, url: str, *, what: str, ok_missing: bool = False, **kwargs: Any) -> httpx.Response:
        for attempt in (1, 2):
            if self._token is None:
                self._token = self._fetch_token()
            headers = {**kwargs.pop("headers", {}), "Authorization": f"DPoP {self._token}",
                       "DPoP": self._dpop.proof(method, url, self._token)}
            try:
                response = self.http.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                raise network_error(exc, what) from None
            if response.status_code == 401 and attempt == 1:
                self._token = None  # expired (they live minutes): one fresh token, then give up
                kwargs["headers"] = {k: v for k, v in headers.items() if k not in ("Authorization", "DPoP")}
                continue
            return check_response(response, what=what, ok_missing=ok_missing)
        raise AssertionError("unreachable")

    # --- the interface ---
    def check(self) -> None:
        self._call("HEAD", self.container, what="open the container", ok_missing=True)

    def record_url(self, dataset: str, key: str, extension: str = "jsonld") -> str:
        return f"{self.container}{quote(dataset, safe='')}/{resource_name(key)}.{extension}"

    # --- the type index (Solid Type Indexes): apps find the containers by class ---
    def _webid(self) -> str | None:
        if self._token is None:
            self._token = self._fetch_token()
        try:
            payload = self._token.split(".")[1]
            return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("webid")
        except (IndexError, ValueError):
            return None

    def _link(self, document: str, subject: str, predicate: str) -> str | None:
        """The object of `subject predicate ?` in an RDF document read as JSON-LD."""
        response = self._call("GET", document, what="read the profile", ok_missing=True,
                              headers={"Accept": "application/ld+json"})
        if response.status_code != 200:
            return None
        nodes = response.json()
        for node in nodes if isinstance(nodes, list) else nodes.get("@graph", [nodes]):
            if node.get("@id") == subject:
                for value in node.get(predicate, []):
                    if isinstance(value, dict) and value.get("@id"):
                        return value["@id"]
        return None

    def _n3_insert(self, url: str, triples: str, what: str) -> None:
        patch = (f"@prefix solid: <{SOLID_TERMS}>.\n"
                 f"_:patch a solid:InsertDeletePatch; solid:inserts {{ {triples} }}.\n")
        self._call("PATCH", url, what=what, content=patch.encode(), headers={"Content-Type": "text/n3"})

    def type_index(self) -> str | None:
        """The pod owner's private type index: the one their profile (or preferences file) names,
        else one the gateway creates beside the records and links from the profile."""
        if self._type_index is not None:
            return self._type_index
        webid = self._webid()
        if not webid:
            return None
        profile = webid.split("#")[0]
        index = self._link(profile, webid, f"{SOLID_TERMS}privateTypeIndex")
        if index is None:
            preferences = self._link(profile, webid, f"{PIM_SPACE}preferencesFile")
            index = preferences and self._link(preferences, webid, f"{SOLID_TERMS}privateTypeIndex")
        if not index:
            index = f"{self.container}{TYPE_INDEX_NAME}"
            self._call("PUT", index, what="create a type index", headers={"Content-Type": "text/turtle"},
                       content=f"@prefix solid: <{SOLID_TERMS}>.\n<> a solid:TypeIndex, solid:UnlistedDocument.\n"
                       .encode())
            self._n3_insert(profile, f"<{webid}> solid:privateTypeIndex <{index}>.", "link the type index")
        self._type_index = index
        return index

    def register(self, dataset: str) -> None:
        """Register the dataset's container in the type index (once per delivery; the same
        triples again change nothing)."""
        if dataset in self._registered:
            return
        index = self.type_index()
        if index:
            container = f"{self.container}{quote(dataset, safe='')}/"
            # one registration per container and class (a pod may hold several destinations'
            # containers): the gateway's record class, and the dataset's standard class
            # (schema:Invoice, sosa:Observation…) for apps that look for those
            node = f"{index}#restitution-{hashlib.sha256(container.encode()).hexdigest()[:16]}"
            triples = [f"<{node}> a solid:TypeRegistration; solid:forClass <{record_class()}>; "
                       f"solid:instanceContainer <{container}>."]
            standard = linked_data.standard_class(dataset)
            if standard:
                triples.append(f"<{node}-class> a solid:TypeRegistration; solid:forClass <{standard}>; "
                               f"solid:instanceContainer <{container}>.")
            self._n3_insert(index, " ".join(triples), "register the data in the type index")
        self._registered.add(dataset)

    def put_record(self, change: Change) -> None:
        self.register(change.dataset)
        url = self.record_url(change.dataset, change.key)
        nodes = linked_data.describe(change, record_subject(url))
        self._call("PUT", url, what="write a record",
                   content=json.dumps(linked_data.jsonld(change, nodes), ensure_ascii=False).encode(),
                   headers={"Content-Type": "application/ld+json"})
        self._call("PUT", self.record_url(change.dataset, change.key, "ttl"), what="write a record",
                   content=linked_data.turtle(nodes).encode(), headers={"Content-Type": "text/turtle"})

    def delete_record(self, change: Change) -> None:
        for extension in ("jsonld", "ttl"):
            self._call("DELETE", self.record_url(change.dataset, change.key, extension), what="remove a record",
                       ok_missing=True)

    def file_url(self, file: File) -> str:
        return f"{self.container}{quote(file.dataset, safe='')}/files/{quote(file_name(file), safe='')}"

    def delete_file(self, file: File) -> None:
        self._call("DELETE", self.file_url(file), what="remove a document", ok_missing=True)

    def put_file(self, file: File) -> None:
        url = self.file_url(file)
        self._call("PUT", url, what="write a document", content=file.content,
                   headers={"Content-Type": file.content_type})
