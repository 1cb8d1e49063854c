#!/usr/bin/env python3
"""The image's health check: GET /healthz where gunicorn listens, as GUNICORN_BIND says.

`host:port` (an unspecified host, 0.0.0.0 or [::], is probed on loopback) or `unix:/path`.
Healthy only on a 200 whose body is the gateway's `ok`, so another process answering on a
port is not taken for the gateway. Exit status 0 healthy, 1 not (what HEALTHCHECK expects).
"""

from __future__ import annotations

import os
import socket
import sys

DEFAULT_BIND = "0.0.0.0:8000"
TIMEOUT = 4.0


def address(bind: str) -> tuple[int, object]:
    """(socket family, address) to probe for a gunicorn bind string."""
    bind = bind.split(",")[0].strip()
    if bind.startswith("unix:"):
        return socket.AF_UNIX, bind[len("unix:"):]
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if host in {"", "0.0.0.0"}:  # noqa: S104 - a bind address, mapped to loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port or 8000))


def probe(bind: str) -> tuple[bool, str]:
    family, target = address(bind)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(target)
        sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\nUser-Agent: gateway-healthcheck\r\n\r\n")
        response = b""
        while chunk := sock.recv(4096):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    healthy = status.split(" ")[1:2] == ["200"] and body.strip() == b"ok"
    return healthy, f"{status} {body[:40]!r}"


def main() -> int:
    bind = os.environ.get("GUNICORN_BIND") or DEFAULT_BIND
    try:
        healthy, seen = probe(bind)
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {bind}: {exc}", file=sys.stderr)
        return 1
    print(f"{'healthy' if healthy else 'unhealthy'}: {bind}: {seen}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
