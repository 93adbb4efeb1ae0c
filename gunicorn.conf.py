"""gunicorn settings, from the environment: `gunicorn -c gunicorn.conf.py 'app:create_app()'`."""

import multiprocessing
import os
import re

from gunicorn.glogging import Logger

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# each call to a PIM waits on the network: threads keep a worker busy while it waits
workers = int(os.environ.get("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# a request in flight waits up to AKENEO_HTTP_TIMEOUT (10 s) on a PIM, then answers: on SIGTERM a
# worker gets this long to finish. Docker stops after 10 s unless told: run the container with
# --stop-timeout 30 (compose: stop_grace_period: 30s), as the README says.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "25"))
keepalive = 5
# the schema is created once by the master, before the workers fork
preload_app = True
# no control socket in $HOME (gunicorn 25.1+): nothing here uses it, and a read-only or
# root-owned home would log an error at every start
control_socket_disable = True
# the workers' heartbeat files in memory: a read-only container needs no writable /tmp
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Forwarded headers: only behind proxies we were told about (TRUSTED_PROXIES). Otherwise none is
# trusted, not even from 127.0.0.1: X-Forwarded-Proto would turn on HSTS and https URLs.
if os.environ.get("TRUSTED_PROXIES", "0").strip() not in ("", "0"):
    forwarded_allow_ips = "*"
else:
    forwarded_allow_ips = ""
    secure_scheme_headers: dict[str, str] = {}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class AccessLogger(Logger):
    """gunicorn's logger, with control characters escaped in the access log's fields.

    `%(U)s` is the decoded path: `/x%0d%0a…` would otherwise write a forged line.
    """

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        """gunicorn's atoms, every text one with its control characters as \\xNN."""
        return {
            key: _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
            if isinstance(value, str)
            else value
            for key, value in super().atoms(resp, req, environ, request_time).items()
        }


logger_class = AccessLogger
# %(U)s is the path without its query: a callback's query holds the authorization code
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") == "1" else None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
