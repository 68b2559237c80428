"""gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`."""
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Only nginx on this machine (deploy/nginx) reaches that address, and it appends the client's address
# to X-Forwarded-For: one trusted proxy. A load balancer in front of nginx makes it 2 (docs/DEPLOY.md).
os.environ.setdefault("TRUSTED_PROXY_COUNT", "1")
# Requests are short and I/O-bound (PostgreSQL, Redis, object storage): threads per worker.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread"
timeout = 30            # a photo upload of 10 MB over a slow link is buffered by nginx first
graceful_timeout = 30
keepalive = 5
max_requests = 5000     # recycle workers to bound slow leaks
max_requests_jitter = 500
accesslog = "-"
# Masks signed query strings (WeChat's push, photo URLs) in the access log: anyone who reads the log
# must not be able to replay them.
logger_class = "app.gunicorn_log.RedactingLogger"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Let the app fail fast on missing configuration before forking workers.
preload_app = True
# Per-run files live with the deployment, in its instance folder (INSTANCE_PATH, default instance/ in
# the project): gunicorn's control socket (for gunicornc) would otherwise be ~/.gunicorn/gunicorn.ctl,
# which every gunicorn of the same user shares (the last one started takes it, the first one stopped
# deletes it). A path longer than 107 bytes cannot be a unix socket: gunicorn then runs without one.
_instance = os.environ.get("INSTANCE_PATH") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                             "instance")
control_socket = os.path.join(_instance, "gunicorn.ctl")
