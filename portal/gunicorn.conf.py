"""Gunicorn settings for the web service (the Dockerfile's CMD and docker-compose.yml's web).

Gunicorn reads WEB_CONCURRENCY itself; GUNICORN_BIND moves the listening socket.
"""

import os
from pathlib import Path

# Inside the container the port is published by compose; 0.0.0.0 is the container's own
# network namespace, not the host's.
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Requests are short (the cloud work happens in Celery), so a request that takes this long
# is stuck; gunicorn restarts its worker.
timeout = 30
graceful_timeout = 30
keepalive = 5
# The application (settings, apps, every urls and views module) is loaded once in the master,
# before it forks: a worker, a recycled one too, starts ready for its first request and shares
# those pages of memory with the others.
preload_app = True
# Recycle workers now and then so a slow leak never grows without bound.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
# The heartbeat file lives in memory: a container's overlay filesystem can stall fchmod.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# The runtime control socket would be created under $HOME, which is read-only here.
control_socket_disable = True
