"""A Cozy test server, built from cozy-stack's documented HTTP API (docs/auth.md, data-system.md,
files.md, settings.md) because a real cozy-stack cannot run here (Go toolchain and CouchDB).

It implements what the gateway uses, with Cozy's status codes: OAuth client registration,
authorization (the owner accepts on a form) with code and refresh-token grants, per-doctype
scopes, documents by id with revisions (`PUT` without `_rev` creates, with a stale `_rev` is a
409), `_all_docs`, folders and files (409 when the name exists), and revoking a client from the
settings. Tokens are opaque random strings (the real ones are JWTs). State is kept in a JSON file,
so a restart (an outage) loses nothing, as with a real server.

Run: python -m tests.connectors_out.cozy_fake STATE_FILE PORT OWNER_TOKEN
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT_DIR_ID = "io.cozy.files.root-dir"


class State:
    def __init__(self, path: Path, owner_token: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data = json.loads(path.read_text()) if path.exists() else {
            "clients": {}, "codes": {}, "tokens": {}, "refresh": {}, "docs": {},
            "files": {ROOT_DIR_ID: {"type": "directory", "name": "", "path": "/", "dir_id": None}}}
        self.data["tokens"][owner_token] = {"client_id": None, "scope": "*"}

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data))


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # --- helpers ---
    def _send(self, status: int, body: object | None = None, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _token(self) -> dict | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        return self.state.data["tokens"].get(auth[7:])

    def _allowed(self, doctype: str) -> bool:
        token = self._token()
        if token is None:
            self._send(401, {"error": "Invalid JWT token"})
            return False
        if token["scope"] != "*" and doctype not in token["scope"].split():
            self._send(403, {"error": "no permission"})
            return False
        return True

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        parts = urlsplit(self.path)
        return [p for p in parts.path.split("/") if p], parse_qs(parts.query)

    # --- verbs ---
    def do_GET(self) -> None:
        segments, query = self._route()
        with self.state.lock:
            if segments[:2] == ["auth", "authorize"]:
                return self._authorize_form(query)
            if segments[:1] == ["data"] and len(segments) == 3:
                return self._get_doc(segments[1], segments[2], query)
            if segments == ["files", "metadata"]:
                return self._file_metadata(query.get("Path", [""])[0])
            if segments[:1] == ["files"] and len(segments) == 2:
                if not self._allowed("io.cozy.files"):
                    return
                item = self.state.data["files"].get(segments[1])
                return self._send(200, self._jsonapi(segments[1], item)) if item else self._send(404, {})
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        segments, query = self._route()
        body = self._body()
        with self.state.lock:
            if segments == ["auth", "register"]:
                return self._register(json.loads(body))
            if segments == ["auth", "authorize"]:
                return self._authorize(parse_qs(body.decode()))
            if segments == ["auth", "access_token"]:
                return self._access_token({k: v[0] for k, v in parse_qs(body.decode()).items()})
            if segments[:1] == ["files"] and len(segments) == 2:
                return self._create_file(segments[1], query, body)
            self._send(404, {"error": "not found"})

    def do_PUT(self) -> None:
        segments, _ = self._route()
        body = self._body()
        with self.state.lock:
            if segments[:1] == ["data"] and len(segments) == 3:
                return self._put_doc(segments[1], segments[2], json.loads(body))
            self._send(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        segments, query = self._route()
        with self.state.lock:
            if segments[:1] == ["data"] and len(segments) == 3:
                return self._delete_doc(segments[1], segments[2], query)
            if segments[:2] == ["settings", "clients"] and len(segments) == 3:
                return self._revoke_client(segments[2])
            if segments[:1] == ["files"] and len(segments) == 2:
                return self._trash_file(segments[1])
            self._send(404, {"error": "not found"})

    # --- OAuth ---
    def _register(self, request: dict) -> None:
        if not request.get("redirect_uris") or not request.get("client_name") or not request.get("software_id"):
            return self._send(400, {"error": "invalid_client_metadata"})
        client_id = secrets.token_hex(16)
        client = {"client_id": client_id, "client_secret": secrets.token_urlsafe(24),
                  "registration_access_token": secrets.token_urlsafe(24), **request}
        self.state.data["clients"][client_id] = client
        self.state.save()
        self._send(201, client)

    def _authorize_form(self, query: dict[str, list[str]]) -> None:
        client = self.state.data["clients"].get(query.get("client_id", [""])[0])
        if client is None or query.get("redirect_uri", [""])[0] not in client["redirect_uris"]:
            return self._send(400, {"error": "invalid client or redirect_uri"})
        fields = "".join(f'<input type="hidden" name="{k}" value="{v[0]}">' for k, v in query.items())
        buttons = '<button>Accept</button><button name="deny" value="1">Refuse</button>'
        page = f'<form method="post" action="/auth/authorize">{fields}{buttons}</form>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def _authorize(self, form: dict[str, list[str]]) -> None:
        values = {k: v[0] for k, v in form.items()}
        client = self.state.data["clients"].get(values.get("client_id", ""))
        if client is None or values.get("redirect_uri") not in client["redirect_uris"]:
            return self._send(400, {"error": "invalid client or redirect_uri"})
        if values.get("deny"):  # the owner refused (RFC 6749 §4.1.2.1)
            location = values["redirect_uri"] + "?" + urlencode({"error": "access_denied",
                                                                 "state": values.get("state", "")})
            return self._send(302, None, {"Location": location})
        code = secrets.token_urlsafe(16)
        self.state.data["codes"][code] = {"client_id": client["client_id"], "scope": values.get("scope", "")}
        self.state.save()
        location = values["redirect_uri"] + "?" + urlencode({"code": code, "state": values.get("state", "")})
        self._send(302, None, {"Location": location})

    def _access_token(self, form: dict[str, str]) -> None:
        client = self.state.data["clients"].get(form.get("client_id", ""))
        if client is None or form.get("client_secret") != client["client_secret"]:
            return self._send(400, {"error": "invalid client_id or client_secret"})
        if form.get("grant_type") == "authorization_code":
            grant = self.state.data["codes"].pop(form.get("code", ""), None)
        elif form.get("grant_type") == "refresh_token":
            grant = self.state.data["refresh"].get(form.get("refresh_token", ""))
        else:
            return self._send(400, {"error": "invalid grant type"})
        if grant is None or grant["client_id"] != client["client_id"]:
            return self._send(400, {"error": "invalid grant"})
        access = secrets.token_urlsafe(24)
        self.state.data["tokens"][access] = dict(grant)
        answer = {"access_token": access, "token_type": "bearer", "scope": grant["scope"]}
        if form["grant_type"] == "authorization_code":
            refresh = secrets.token_urlsafe(24)
            self.state.data["refresh"][refresh] = dict(grant)
            answer["refresh_token"] = refresh
        self.state.save()
        self._send(200, answer)

    def _revoke_client(self, client_id: str) -> None:
        token = self._token()
        if token is None or token["scope"] != "*":
            return self._send(403, {"error": "owner only"})
        self.state.data["clients"].pop(client_id, None)
        for table in ("tokens", "refresh", "codes"):
            self.state.data[table] = {k: v for k, v in self.state.data[table].items()
                                      if v.get("client_id") != client_id}
        self.state.save()
        self._send(204)

    # --- data ---
    def _get_doc(self, doctype: str, doc_id: str, query: dict[str, list[str]]) -> None:
        if not self._allowed(doctype):
            return
        docs = self.state.data["docs"].get(doctype, {})
        if doc_id == "_all_docs":
            rows = [{"id": k, "key": k, "value": {"rev": v["_rev"]},
                     **({"doc": v} if query.get("include_docs") else {})} for k, v in sorted(docs.items())]
            return self._send(200, {"total_rows": len(rows), "offset": 0, "rows": rows})
        doc = docs.get(doc_id)
        self._send(200, doc) if doc else self._send(404, {"error": "not_found", "reason": "missing"})

    def _put_doc(self, doctype: str, doc_id: str, body: dict) -> None:
        if not self._allowed(doctype):
            return
        if any(k.startswith("_") and k not in ("_id", "_rev") for k in body):
            return self._send(400, {"error": "bad request", "reason": "reserved field"})
        docs = self.state.data["docs"].setdefault(doctype, {})
        current = docs.get(doc_id)
        if (current is None and body.get("_rev")) or (current is not None and body.get("_rev") != current["_rev"]):
            return self._send(409, {"error": "conflict", "reason": "Document update conflict."})
        generation = int(current["_rev"].split("-")[0]) + 1 if current else 1
        content = {k: v for k, v in body.items() if k not in ("_id", "_rev")}
        rev = f"{generation}-{hashlib.md5(json.dumps(content, sort_keys=True).encode()).hexdigest()}"  # noqa: S324
        docs[doc_id] = {"_id": doc_id, "_rev": rev, **content}
        self.state.save()
        self._send(200 if current else 201, {"ok": True, "id": doc_id, "rev": rev, "type": doctype,
                                             "data": docs[doc_id]})

    def _delete_doc(self, doctype: str, doc_id: str, query: dict[str, list[str]]) -> None:
        if not self._allowed(doctype):
            return
        docs = self.state.data["docs"].get(doctype, {})
        current = docs.get(doc_id)
        if current is None:
            return self._send(404, {"error": "not_found"})
        rev = query.get("rev", [self.headers.get("If-Match", "")])[0]
        if rev != current["_rev"]:
            return self._send(409, {"error": "conflict"})
        del docs[doc_id]
        self.state.save()
        self._send(200, {"ok": True, "id": doc_id, "rev": rev, "type": doctype, "deleted": True})

    # --- files ---
    def _jsonapi(self, file_id: str, item: dict) -> dict:
        return {"data": {"type": "io.cozy.files", "id": file_id, "attributes": {
            k: v for k, v in item.items() if k != "content"}}}

    def _file_metadata(self, path: str) -> None:
        if not self._allowed("io.cozy.files"):
            return
        for file_id, item in self.state.data["files"].items():
            if item["path"] == path:
                return self._send(200, self._jsonapi(file_id, item))
        self._send(404, {"errors": [{"status": "404", "title": "Not Found"}]})

    def _trash_file(self, file_id: str) -> None:
        """cozy-stack's `DELETE /files/:id`: the file goes to the trash (restorable by the owner)."""
        if not self._allowed("io.cozy.files"):
            return
        item = self.state.data["files"].get(file_id)
        if item is None or item.get("trashed"):
            return self._send(404, {"errors": [{"status": "404", "title": "Not Found"}]})
        item.update(trashed=True, restore_path=item["path"], path=_trash_path(item["name"]))
        self.state.save()
        self._send(200, self._jsonapi(file_id, item))

    def _create_file(self, dir_id: str, query: dict[str, list[str]], body: bytes) -> None:
        if not self._allowed("io.cozy.files"):
            return
        parent = self.state.data["files"].get(dir_id)
        name = query.get("Name", [""])[0]
        kind = query.get("Type", [""])[0]
        if parent is None or parent["type"] != "directory" or not name or kind not in ("file", "directory"):
            return self._send(404 if parent is None else 422, {"errors": [{"title": "bad request"}]})
        path = f"{parent['path'].rstrip('/')}/{name}"
        if any(item["path"] == path for item in self.state.data["files"].values()):
            return self._send(409, {"errors": [{"status": "409", "title": "Conflict"}]})
        item = {"type": kind, "name": name, "path": path, "dir_id": dir_id}
        if kind == "file":
            import base64

            expected = self.headers.get("Content-MD5")
            if expected and base64.b64encode(hashlib.md5(body).digest()).decode() != expected:  # noqa: S324
                return self._send(412, {"errors": [{"status": "412", "title": "Precondition Failed"}]})
            item.update(size=len(body), mime=self.headers.get("Content-Type", ""),
                        sha256=hashlib.sha256(body).hexdigest())
        file_id = secrets.token_hex(16)
        self.state.data["files"][file_id] = item
        self.state.save()
        self._send(201, self._jsonapi(file_id, item))


def _trash_path(name: str) -> str:
    return f"/.cozy_trash/{name}"


def main(state_file: str, port: int, owner_token: str) -> None:
    Handler.state = State(Path(state_file), owner_token)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
