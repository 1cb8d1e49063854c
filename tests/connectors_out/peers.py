"""The personal-cloud servers of the push tests, as real processes: wsgidav (Nextcloud-style
WebDAV), Community Solid Server 7.2, armadietto (remoteStorage), and the Cozy fake.

Each peer gives: connection settings and credentials for one test, `read_all()` (every
record resource read back over the peer's own protocol, refusing duplicates), `versions()`
(a version tag per resource, to see what a delivery rewrote), `revoke()` (as the user would
at their provider) and its process (stop/start for an outage)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx

from tests.connectors_out.conftest import PeerProcess, free_port, python_server
from tests.connectors_out.peers_install import npm_peers

DAV_FILES = "/remote.php/dav/files/"


class WebDavPeer:
    kind = "webdav"
    user = "alice"

    def __init__(self, root: Path, log_dir: Path) -> None:
        self.root, self.log_dir = root, log_dir
        self.port = free_port()
        self.password = f"app-{uuid.uuid4().hex[:12]}"
        self.process = self._process()

    def _process(self) -> PeerProcess:
        return python_server("wsgidav", "tests.connectors_out.webdav_server",
                             [str(self.root), str(self.port), self.user, self.password], self.port, self.log_dir)

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return ({"server": self.server, "username": self.user, "folder": "Restitution"},
                {"app_password": self.password})

    def revoke(self) -> None:
        """As when the user deletes the app password in Nextcloud: it opens nothing any more."""
        self.process.stop()
        self.password = "a-new-password-only-the-user-knows"
        self.process = self._process()
        self.process.start()

    def _http(self) -> httpx.Client:
        return httpx.Client(auth=(self.user, self.password), base_url=self.server)

    def resources(self, http: httpx.Client) -> list[str]:
        base = f"/remote.php/dav/files/{self.user}/Restitution/"
        return [item for folder in self._listing(http, base) if folder.endswith("/")
                for item in self._listing(http, folder) if item.endswith(".json")]

    def read_all(self) -> dict[tuple[str, str], dict]:
        with self._http() as http:
            return collect(http.get(href).raise_for_status().json() for href in self.resources(http))

    def versions(self) -> dict[str, str]:
        with self._http() as http:
            return {href: http.head(href).headers["etag"] for href in self.resources(http)}

    def file_hashes(self, dataset: str) -> list[str]:
        """The sha256 of every document stored for a dataset (a list: duplicates show)."""
        with self._http() as http:
            folder = f"/remote.php/dav/files/{self.user}/Restitution/{dataset}/files/"
            return sorted(_sha(http.get(href).raise_for_status().content) for href in self._listing(http, folder))

    def read_with_webdav4(self, folder: str = "Restitution") -> tuple[dict[str, dict], dict[str, bytes]]:
        """Everything under the folder as a WebDAV app reads it, through the `webdav4` client:
        ({path: record JSON}, {path: document bytes}), from the server's own listings."""
        import io

        from webdav4.client import Client

        records: dict[str, dict] = {}
        files: dict[str, bytes] = {}
        client = Client(f"{self.server}{DAV_FILES}{self.user}", auth=(self.user, self.password))

        def download(path: str) -> bytes:
            buffer = io.BytesIO()
            client.download_fileobj(path, buffer)
            return buffer.getvalue()

        try:
            if not client.exists(folder):
                return records, files
            for dataset in client.ls(folder, detail=True):
                assert dataset["type"] == "directory", dataset
                for item in client.ls(dataset["name"], detail=True):
                    if item["type"] == "directory":
                        assert item["name"].endswith("/files"), item
                        for document in client.ls(item["name"], detail=True):
                            files[document["name"]] = download(document["name"])
                    else:
                        assert item["name"].endswith(".json"), item
                        records[item["name"]] = json.loads(download(item["name"]))
        finally:
            client.http.close()
        return records, files

    @staticmethod
    def _listing(http: httpx.Client, path: str) -> list[str]:
        response = http.request("PROPFIND", path, headers={"Depth": "1"})
        if response.status_code == 404:
            return []
        assert response.status_code == 207, response.text
        hrefs = [node.text for node in ElementTree.fromstring(response.content).iter("{DAV:}href")]
        return [h for h in hrefs if h and h.rstrip("/") != path.rstrip("/")]


def _sha(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def collect(documents) -> dict[tuple[str, str], dict]:
    found: dict[tuple[str, str], dict] = {}
    for document in documents:
        key = (document["dataset"], document["key"])
        assert key not in found, f"duplicate resource for {key}"
        found[key] = document
    return found


class SolidServer:
    """One Community Solid Server for the session (file-backed, so it survives a restart)."""

    email, password = "alice@example.org", "alice-pw-1234"

    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        peers = npm_peers()
        self.port = free_port()
        # Solid-OIDC accepts an http WebID only on localhost.
        self.base = f"http://localhost:{self.port}/"
        seed = data_dir / "seed.json"
        seed.write_text(json.dumps([{"email": self.email, "password": self.password, "pods": [{"name": "alice"}]}]))
        command = [str(peers / "node_modules" / ".bin" / "community-solid-server"), "-p", str(self.port),
                   "-b", self.base, "-c", "@css:config/file.json", "-f", str(data_dir / "data"), "-l", "warn"]
        self.process = PeerProcess("css", [*command, "--seedConfig", str(seed)], self.port, cwd=peers,
                                   log_dir=log_dir, ready_timeout=120)
        self.process.start()
        self.process.command = command  # restarts keep the accounts: no second seeding
        self._wait_ready()

    def _wait_ready(self) -> None:
        import time

        for _ in range(300):
            try:
                if httpx.get(f"{self.base}.account/", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the Solid server did not become ready")

    def account(self) -> tuple[httpx.Client, dict[str, Any]]:
        http = httpx.Client(timeout=10)
        token = http.post(f"{self.base}.account/login/password/",
                          json={"email": self.email, "password": self.password}).raise_for_status().json()
        http.headers["Authorization"] = f"CSS-Account-Token {token['authorization']}"
        return http, http.get(f"{self.base}.account/").json()["controls"]


class SolidPeer:
    kind = "solid"

    def __init__(self, server: SolidServer) -> None:
        self.server = server
        self.container = f"{server.base}alice/restitution-{uuid.uuid4().hex[:8]}/"
        http, controls = server.account()
        try:
            created = http.post(controls["account"]["clientCredentials"],
                                json={"name": "gateway", "webId": f"{server.base}alice/profile/card#me"})
            self.credential = created.raise_for_status().json()
        finally:
            http.close()

    @property
    def process(self) -> PeerProcess:
        return _SolidProcess(self.server)  # type: ignore[return-value]

    def connection(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return ({"container": self.container},
                {"client_id": self.credential["id"], "client_secret": self.credential["secret"]})

    def revoke(self) -> None:
        """As when the user deletes the client credentials on their account page."""
        http, _ = self.server.account()
        try:
            http.delete(self.credential["resource"]).raise_for_status()
        finally:
            http.close()

    def _transport(self):
        from connectors_out.kinds.solid.transport import SolidTransport

        settings_, credentials = self.connection()
        return SolidTransport(settings=settings_, credentials=credentials)

    def resources(self, transport) -> list[str]:
        urls = []
        top = transport._call("GET", self.container, what="list", ok_missing=True,
                              headers={"Accept": "application/ld+json"})
        if top.status_code == 404:
            return []
        for folder in _contained(top.json(), self.container):
            listing = transport._call("GET", folder, what="list", headers={"Accept": "application/ld+json"})
            urls += [u for u in _contained(listing.json(), folder) if u.endswith(".jsonld")]
        return urls

    def read_all(self) -> dict[tuple[str, str], dict]:
        transport = self._transport()
        try:
            return collect(transport._call("GET", url, what="read", headers={"Accept": "application/ld+json"}).json()
                           for url in self.resources(transport))
        finally:
            transport.close()

    def versions(self) -> dict[str, str]:
        transport = self._transport()
        try:
            return {url: transport._call("HEAD", url, what="head").headers["etag"] for url in self.resources(transport)}
        finally:
            transport.close()

    def read_with_library(self) -> dict[str, Any]:
        """The container as Solid apps read it, through @inrupt/solid-client, logged in with the
        pod owner's client credentials: {webId, records, files, registrations} (solid_read.js)."""
        import subprocess

        from tests.connectors_out.peers_install import npm_clients

        script = Path(__file__).with_name("solid_read.js")
        result = subprocess.run(
            ["node", str(script), self.server.base, self.credential["id"], self.credential["secret"], self.container],
            cwd=npm_clients(), capture_output=True, text=True, timeout=120,
            env={"NODE_PATH": str(npm_clients() / "node_modules"), "PATH": "/usr/bin:/bin:/usr/local/bin"})
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)

    def file_hashes(self, dataset: str) -> list[str]:
        transport = self._transport()
        try:
            folder = f"{self.container}{dataset}/files/"
            listing = transport._call("GET", folder, what="list", ok_missing=True,
                                      headers={"Accept": "application/ld+json"})
            if listing.status_code == 404:
                return []
            return sorted(_sha(transport._call("GET", url, what="read").content)
                          for url in _contained(listing.json(), folder))
        finally:
            transport.close()


def _contained(listing: list[dict[str, Any]], container: str) -> list[str]:
    """The members of a container, from its JSON-LD representation (each member is described)."""
    members = set()
    for node in listing:
        members.update(item["@id"] for item in node.get("http://www.w3.org/ns/ldp#contains", []))
        node_id = node.get("@id", "")
        if node_id.startswith(container) and node_id != container and "/" not in node_id[len(container):].rstrip("/"):
            members.add(node_id)
    return sorted(members)


class _SolidProcess:
    def __init__(self, server: SolidServer) -> None:
        self.server = server

    def stop(self) -> None:
        self.server.process.stop()

    def start(self) -> None:
        self.server.process.start()
        self.server._wait_ready()


def customer_browser(customer, **kwargs):
    """A test browser logged in as this customer (a `Customer`)."""
    from django.test import Client

    browser = Client(**kwargs)
    browser.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    return browser


def _browser(demo):
    return customer_browser(demo.customer)


def _connect_form(demo, **fields) -> dict[str, Any]:
    return {"datasets": [d.pk for d in demo.datasets], "duration": "3m", **fields}


#: The message of the destinations page after a refusal at the cloud's authorization page.
REFUSED = "Your cloud did not authorize the gateway"


def messages_of(response) -> str:
    """The messages a page shows (Django's messages framework), joined."""
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


class ArmadiettoServer:
    """One armadietto (remoteStorage) server for the session, file-backed."""

    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        peers = npm_peers()
        self.port = free_port()
        self.store = data_dir / "store"
        config = data_dir / "armadietto.json"
        config.write_text(json.dumps({
            "allow_signup": True, "storage_path": str(self.store), "cache_views": True,
            "http": {"host": "127.0.0.1", "port": self.port}, "https": {"enable": False, "force": False},
            "logging": {"log_dir": str(data_dir / "logs"), "stdout": ["error"], "log_files": ["error"]},
            "basePath": ""}))
        self.process = PeerProcess("armadietto", ["node", str(peers / "node_modules" / "armadietto" / "bin" /
                                                             "armadietto.js"), "-c", str(config)],
                                   self.port, cwd=peers, log_dir=log_dir)
        self.process.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class RemoteStoragePeer:
    kind = "remotestorage"

    def __init__(self, server: ArmadiettoServer) -> None:
        self.server = server
        self.process = server.process
        self.user, self.password = f"u{uuid.uuid4().hex[:10]}", "pw-" + uuid.uuid4().hex[:12]
        httpx.post(f"{server.origin}/signup", data={"username": self.user, "email": f"{self.user}@example.org",
                                                    "password": self.password}).raise_for_status()
        self.root = f"{server.origin}/storage/{self.user}/restitution/"
        self.token: str | None = None

    def connect(self, demo):
        """Through the dashboard, as a person would: address → the storage's authorization page →
        back to the gateway with the token in the URL fragment (posted by the callback page's script)."""
        from urllib.parse import parse_qs, urlsplit

        from connectors_out.models import Destination

        browser = _browser(demo)
        started = browser.post("/account/destinations/connect/remotestorage/",
                               _connect_form(demo, address=f"{self.user}@127.0.0.1:{self.server.port}"))
        assert started.status_code == 302, started.content[:2000]
        authorize = urlsplit(started["Location"])
        query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
        assert query["response_type"] == "token" and query["scope"] == "restitution:rw"
        answer = httpx.post(f"{self.server.origin}/oauth", data={**query, "username": self.user,
                                                                 "password": self.password, "allow": "Allow"})
        assert answer.status_code == 302, answer.text
        callback = urlsplit(answer.headers["location"])
        fragment = {k: v[0] for k, v in parse_qs(callback.fragment).items()}
        self.token = fragment["access_token"]
        assert browser.get(callback.path).status_code == 200  # the page whose script posts the fragment
        done = browser.post(callback.path, {"access_token": self.token, "state": fragment["state"]})
        assert done.status_code == 302 and done["Location"].endswith("/account/destinations/")
        return Destination.objects.get(customer=demo.customer, kind="remotestorage")

    def revoke(self) -> None:
        """As armadietto's own revokeAccess does: the session of this token leaves the user's auth file."""
        path = self.server.store / self.user[:2] / self.user / "auth.json"
        auth = json.loads(path.read_text())
        auth["sessions"] = {}
        path.write_text(json.dumps(auth))

    def _http(self) -> httpx.Client:
        return httpx.Client(headers={"Authorization": f"Bearer {self.token}"})

    def _items(self, http: httpx.Client, folder: str) -> dict[str, str]:
        response = http.get(folder)
        if response.status_code == 404:
            return {}
        return {name: meta["ETag"] for name, meta in response.raise_for_status().json()["items"].items()}

    def versions(self) -> dict[str, str]:
        with self._http() as http:
            return {f"{folder}{name}": etag for folder in self._items(http, self.root)
                    for name, etag in self._items(http, f"{self.root}{folder}").items() if name.endswith(".json")}

    def read_all(self) -> dict[tuple[str, str], dict]:
        with self._http() as http:
            return collect(http.get(f"{self.root}{name}").raise_for_status().json() for name in self.versions())

    def file_hashes(self, dataset: str) -> list[str]:
        with self._http() as http:
            return sorted(_sha(http.get(f"{self.root}{dataset}/files/{name}").raise_for_status().content)
                          for name in self.file_types(dataset))

    def file_types(self, dataset: str) -> dict[str, str]:
        """The stored documents of a dataset: name → Content-Type, from the folder listing."""
        with self._http() as http:
            response = http.get(f"{self.root}{dataset}/files/")
            if response.status_code == 404:
                return {}
            return {name: meta["Content-Type"] for name, meta in response.raise_for_status().json()["items"].items()}

    def read_with_library(self, paths: list[str]) -> dict[str, dict]:
        """The documents as remoteStorage apps see them, through remotestorage.js."""
        import subprocess

        from tests.connectors_out.peers_install import npm_clients

        script = Path(__file__).with_name("remotestorage_read.js")
        result = subprocess.run(
            ["node", str(script), f"{self.server.origin}/storage/{self.user}", self.token or "",
             f"{self.user}@127.0.0.1:{self.server.port}", *paths],
            cwd=npm_clients(), capture_output=True, text=True, timeout=120,
            env={"NODE_PATH": str(npm_clients() / "node_modules"), "PATH": "/usr/bin:/bin:/usr/local/bin"})
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)


class CozyPeer:
    kind = "cozy"

    def __init__(self, root: Path, log_dir: Path) -> None:
        self.port = free_port()
        self.owner = f"owner-{uuid.uuid4().hex}"
        self.state_file = root / "cozy.json"
        self.process = python_server("cozy-fake", "tests.connectors_out.cozy_fake",
                                     [str(self.state_file), str(self.port), self.owner], self.port, log_dir)
        self.client_id: str | None = None
        self.datasets: list[str] = []

    @property
    def instance(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, demo):
        """Through the dashboard: register at the Cozy, the owner accepts, the code comes back."""
        from urllib.parse import parse_qs, urlsplit

        from connectors_out.models import Destination

        browser = _browser(demo)
        started = browser.post("/account/destinations/connect/cozy/", _connect_form(demo, instance=self.instance))
        assert started.status_code == 302, started.content[:2000]
        query = {k: v[0] for k, v in parse_qs(urlsplit(started["Location"]).query).items()}
        self.client_id = query["client_id"]
        assert "io.cozy.files" in query["scope"].split()
        assert httpx.get(started["Location"]).status_code == 200  # the consent page of the Cozy
        accepted = httpx.post(f"{self.instance}/auth/authorize", data=query)
        assert accepted.status_code == 302
        back = urlsplit(accepted.headers["location"])
        done = browser.get(f"{back.path}?{back.query}")
        assert done.status_code == 302 and done["Location"].endswith("/account/destinations/")
        self.datasets = [d.slug for d in demo.datasets]
        return Destination.objects.get(customer=demo.customer, kind="cozy")

    def revoke(self) -> None:
        """As when the owner removes the connected app in the Cozy's settings."""
        httpx.delete(f"{self.instance}/settings/clients/{self.client_id}",
                     headers={"Authorization": f"Bearer {self.owner}"}).raise_for_status()

    def _docs(self) -> dict[str, dict]:
        from connectors_out.kinds.cozy.transport import doctype

        found = {}
        with httpx.Client(headers={"Authorization": f"Bearer {self.owner}"}) as http:
            for slug in self.datasets:
                rows = http.get(f"{self.instance}/data/{doctype(slug)}/_all_docs",
                                params={"include_docs": "true"}).raise_for_status().json()["rows"]
                found.update({f"{slug}/{row['id']}": row["doc"] for row in rows})
        return found

    def versions(self) -> dict[str, str]:
        return {name: doc["_rev"] for name, doc in self._docs().items()}

    def file_hashes(self, dataset: str) -> list[str]:
        """Files in the drive folder (not in the trash), read from the fake's own state."""
        files = json.loads(self.state_file.read_text())["files"].values()
        return sorted(item["sha256"] for item in files
                      if item["type"] == "file" and item["path"].startswith(f"/Restitution/{dataset}/"))

    def bills(self) -> list[dict]:
        with httpx.Client(headers={"Authorization": f"Bearer {self.owner}"}) as http:
            rows = http.get(f"{self.instance}/data/io.cozy.bills/_all_docs",
                            params={"include_docs": "true"}).raise_for_status().json()["rows"]
        return [row["doc"] for row in rows]

    def read_all(self) -> dict[tuple[str, str], dict]:
        return collect(self._docs().values())
