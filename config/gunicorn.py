"""gunicorn settings of the production image (`gunicorn config.wsgi:application -c python:config.gunicorn`).

The access log never carries query strings (a misbehaving client may put a token there).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
accesslog = "-"
# %(U)s is the path without its query string; the response's X-Request-ID ties the line to the app's logs.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss request_id=%({x-request-id}o)s'


def child_exit(server, worker):
    """With Prometheus multiprocess mode, forget the metrics files of a dead worker."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
