"""The Celery app: `celery -A ethhook.celery_app worker -Q match,deliver,maintenance`."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from ethhook.db import dispose_engine

app = Celery("ethhook")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["ethhook.match", "ethhook.deliver", "ethhook.maintenance"], force=True)

log = logging.getLogger(__name__)


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A forked pool process must not reuse the parent's database connections.
    dispose_engine()
