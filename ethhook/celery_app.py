"""The Celery app: `celery -A ethhook.celery_app worker -Q match,deliver,maintenance`.

Importing it is cheap: the task modules (and what they import: the HTTP client, the breakers, ABI
decoding) are imported when a worker starts, not by every process that only publishes tasks by
name (the listener, the CLI, the tests); see bench/memory_probe.py.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, worker_init, worker_process_init
from kombu.transport import TRANSPORT_ALIASES

from ethhook import metrics
from ethhook.logs import workers as worker_logs


def _green_psycopg() -> None:
    """Under a gevent pool, make psycopg2 yield to other greenlets while it waits on PostgreSQL."""
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            from psycogreen.gevent import patch_psycopg

            patch_psycopg()


_green_psycopg()

# redis:// and rediss:// go through kombu's Redis transport with one fix, so that a worker
# reconnects after a Redis restart instead of stopping (ethhook/broker_transport.py). Registered
# under kombu's own names, not as `broker_transport`: URLs, logs and Flower's queue lengths keep
# saying redis://.
TRANSPORT_ALIASES.update(dict.fromkeys(("redis", "rediss"), "ethhook.broker_transport:Transport"))

app = Celery("ethhook")
app.config_from_object("celeryconfig")
# Workers and beat log as every EthHook process does (ethhook/logs); the routine jobs quietly.
worker_logs.install(app)
# Not forced: a worker (or beat) imports the task modules when it starts; a process that only
# publishes (send_task by name, routed by celeryconfig) never pays for them.
app.autodiscover_tasks(
    ["ethhook.match", "ethhook.deliver", "ethhook.maintenance", "ethhook.replay"]
)


@worker_init.connect
def _check_schema(**_: Any) -> None:
    """Stop a worker starting on a database without this code's schema, in one line."""
    from ethhook.config import get_settings
    from ethhook.db.schema import check_schema_at_start
    from ethhook.exceptions import SchemaError

    try:
        check_schema_at_start(get_settings().database_url)
    except SchemaError as exc:
        # Not an Exception: Celery logs those from a signal handler, with a traceback, and starts.
        raise SystemExit(f"ethhook: error: {exc}") from None


@celeryd_after_setup.connect
def _warn_if_plaintext(**_: Any) -> None:
    """Once per worker, in its own log (set up by now): whether secrets are stored as plaintext."""
    from ethhook.config import get_settings
    from ethhook.db.secrets import warn_if_plaintext

    warn_if_plaintext(get_settings())


# After the check above (receivers run in order): a worker that stops there serves no /metrics.
metrics.connect_worker_signals()

log = logging.getLogger(__name__)


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A forked pool process must not reuse the parent's database connections.
    from ethhook.db import dispose_engine  # here: publishers importing the app need no SQLAlchemy

    dispose_engine()
