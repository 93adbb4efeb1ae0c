"""gunicorn settings, from the environment: `gunicorn -c gunicorn.conf.py 'app:create_app()'`."""

import multiprocessing
import os

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# each call to a PIM waits on the network: threads keep a worker busy while it waits
workers = int(os.environ.get("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 20
keepalive = 5
# the schema is created once by the master, before the workers fork
preload_app = True
# %(U)s is the path without its query: a callback's query holds the authorization code
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") == "1" else None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = "*" if os.environ.get("TRUSTED_PROXIES", "0") != "0" else "127.0.0.1"
