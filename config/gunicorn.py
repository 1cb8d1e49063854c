"""gunicorn settings of the production image (`gunicorn config.wsgi:application -c python:config.gunicorn`).

The access log never carries query strings (a misbehaving client may put a token there).
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
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
accesslog = "-"
# %(U)s is the path without its query string; the response's X-Request-ID ties the line to the app's logs.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss request_id=%({x-request-id}o)s'


def child_exit(server, worker):
    """With Prometheus multiprocess mode, forget the metrics files of a dead worker."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
