"""A Nextcloud-shaped WebDAV server for the tests: wsgidav serving a folder at
/remote.php/dav/files/{user}/ with HTTP Basic auth (an app password), on cheroot.

Run: python -m tests.connectors_out.webdav_server ROOT PORT USER PASSWORD
"""

from __future__ import annotations

import sys

from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp


def main(root: str, port: int, user: str, password: str) -> None:
    app = WsgiDAVApp({
        "host": "127.0.0.1", "port": port,
        "provider_mapping": {f"/remote.php/dav/files/{user}": root},
        "simple_dc": {"user_mapping": {"*": {user: {"password": password}}}},
        "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
        "verbose": 1, "logging": {"enable_loggers": []}, "property_manager": True, "lock_storage": True,
    })
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=4)
    try:
        server.start()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
