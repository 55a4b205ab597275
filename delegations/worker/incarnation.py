"""Which worker holds a lease, and what a restarted worker does about its previous life.

Every lease token starts with the worker's *node key* (a hash of its Celery node name, e.g.
`worker1@host`, which stays the same across restarts of that node) and its *incarnation* (new
each time the worker process starts): `<node key>.<incarnation>.<random>`. A worker killed
mid-run leaves its leases held until they expire; when the same node starts again it frees
those of another incarnation that nobody renews (a couple of heartbeats, not a whole lease)
and asks for a reconcile of each subject (`delegations.worker.restart`), instead of waiting
for the expiry and the stuck-work sweep. A node name alone does not prove the other
incarnation dead: a second worker may have been started with the name of one still running,
whose heartbeats keep its leases its own.

`worker_starting` runs in the worker's main process before the pool forks (Celery's
`celeryd_init`), so every pool process inherits the identity through the environment.
Processes that are not workers (web, tests, management commands) get a node key of their host
and process id and never release anything.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass

logger = logging.getLogger(__name__)

NODE_ENV = "PORTAL_WORKER_NODE_KEY"
INCARNATION_ENV = "PORTAL_WORKER_INCARNATION"


@dataclass(frozen=True)
class Identity:
    node_key: str
    incarnation: str

    @property
    def prefix(self) -> str:
        """What every lease token of this incarnation starts with."""
        return f"{self.node_key}.{self.incarnation}."


def node_key(nodename: str) -> str:
    """A short fixed-length key for a Celery node name (tokens fit in 64 characters)."""
    return hashlib.sha256(nodename.encode()).hexdigest()[:12]


def worker_starting(nodename: str) -> Identity:
    """Called once as a worker process starts: a new incarnation of node `nodename`."""
    os.environ[NODE_ENV] = node_key(nodename)
    os.environ[INCARNATION_ENV] = uuid.uuid4().hex[:8]
    return identity()


def identity() -> Identity:
    node = os.environ.get(NODE_ENV) or node_key(f"{socket.gethostname()}:{os.getpid()}")
    incarnation = os.environ.get(INCARNATION_ENV) or "0"
    return Identity(node_key=node, incarnation=incarnation)


def lease_token() -> str:
    return f"{identity().prefix}{uuid.uuid4().hex}"
