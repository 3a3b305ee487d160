"""The Celery app: `celery -A ethhook.celery_app worker -Q match,deliver,maintenance`."""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from ethhook import metrics
from ethhook.db import dispose_engine


def _green_psycopg() -> None:
    """Under a gevent pool, make psycopg2 yield to other greenlets while it waits on PostgreSQL."""
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            from psycogreen.gevent import patch_psycopg

            patch_psycopg()


_green_psycopg()

app = Celery("ethhook")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["ethhook.match", "ethhook.deliver", "ethhook.maintenance"], force=True)

metrics.connect_worker_signals()

log = logging.getLogger(__name__)


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A forked pool process must not reuse the parent's database connections.
    dispose_engine()
