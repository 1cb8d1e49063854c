"""gunicorn settings of the production image (`gunicorn config.wsgi:application -c python:config.gunicorn`).

The access log never carries query strings (a misbehaving client may put a token there). Only a
proxy in FORWARDED_ALLOW_IPS (or one on a unix socket) may say a request came over HTTPS.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Threads: a worker keeps serving while one of its requests waits on PostgreSQL, and keeps idle
# HTTP/1.1 connections open without holding a thread.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# Longer than the idle timeout of the proxy or client in front (nginx and most load balancers: 60 s),
# so that the server never closes a connection just as a request is sent on it: with gunicorn's
# default of 2 s, that race showed as connection errors under load.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# gunicorn's own default: loopback only. Name the proxy in front (addresses or networks).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# gunicornc's control socket only where asked for: by default it goes to $HOME/.gunicorn, an
# ERROR at every start where the home is not writable, and shared by every gunicorn of the user.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
accesslog = "-"
# %(U)s is the path without its query string; the response's X-Request-ID ties the line to the app's logs.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss request_id=%({x-request-id}o)s'

# gunicorn's own lines (start, workers, access) in the format of the gateway's (LOG_FORMAT).
if os.environ.get("LOG_FORMAT", "json") == "json":
    _json = {"()": "restitution.observability.JsonFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
             "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}}
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": _json},
        "handlers": {
            "error": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
        "root": {"level": "INFO", "handlers": []},
    }

# The scheme headers gunicorn honours (secure_scheme_headers), upper-cased as it stores them.
_SCHEME_HEADERS = ("X-FORWARDED-PROTO", "X-FORWARDED-PROTOCOL", "X-FORWARDED-SSL")


def pre_request(worker, req):
    """Keep X-Forwarded-Proto only as gunicorn understood it.

    gunicorn decides the scheme from these headers only when the peer is a trusted proxy
    (`forwarded_allow_ips`), but passes them on to the application whoever sent them, and Django
    reads X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER) without asking who sent it: a client that
    reaches gunicorn directly could claim HTTPS. So the application sees the scheme gunicorn
    settled on, and nothing else.
    """
    req.headers = [(name, value) for name, value in req.headers if name not in _SCHEME_HEADERS]
    req.headers.append(("X-FORWARDED-PROTO", req.scheme))


def child_exit(server, worker):
    """With Prometheus multiprocess mode, forget the metrics files of a dead worker."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
