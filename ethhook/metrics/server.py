"""Serving /metrics: the listener's exposition and a Celery worker's multiprocess HTTP server.

Two ways a process exposes its metrics:

* The listener (one process) keeps its metrics in memory and serves `exposition()` on its own HTTP
  server (`Settings.metrics_port`) next to `/health`.
* A Celery worker calls `start_worker_metrics()` on `worker_init`, in its main process before the
  pool starts. That switches prometheus-client to multiprocess mode in a fresh folder of its own (so
  prefork children, gevent, threads and solo pools all write to the same place, and two workers on
  one machine never mix their numbers) and serves the merged values on
  `Settings.worker_metrics_port` (0 = off).

Both also show the scrape-time gauges of `ethhook.metrics.collectors`.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, multiprocess, start_http_server
from prometheus_client import values as _prom_values
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from ethhook.metrics import definitions
from ethhook.metrics.collectors import shared_state_collectors

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

log = logging.getLogger(__name__)

_lock = threading.Lock()
_multiproc_dir: str | None = None
_owner_pid: int | None = None
_server: WSGIServer | None = None
_exposition_registry: CollectorRegistry | None = None


class _RegistryCollector(Collector):
    """Lets one registry be shown inside another."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self._inner = inner

    def collect(self) -> Iterable[Metric]:
        return self._inner.collect()


def build_exposition_registry(
    extra: Iterable[Collector] | None = None,
) -> CollectorRegistry:
    """What this process's /metrics shows: its metrics (merged across the worker's processes in
    multiprocess mode), plus `extra` collectors (default: the database and broker gauges)."""
    out = CollectorRegistry()
    if _multiproc_dir is not None:
        multiprocess.MultiProcessCollector(out, path=_multiproc_dir)
    else:
        out.register(_RegistryCollector(definitions.own_registry()))
        out.register(ProcessCollector(registry=None))
    for collector in shared_state_collectors() if extra is None else extra:
        out.register(collector)
    return out


def exposition(accept_header: str | None = None) -> tuple[bytes, str]:
    """(body, content type) for a GET /metrics: for the listener's own HTTP server."""
    global _exposition_registry
    if _exposition_registry is None:
        with _lock:
            if _exposition_registry is None:
                _exposition_registry = build_exposition_registry()
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(_exposition_registry), content_type


def enable_multiprocess(directory: str | None = None) -> str:
    """Back every metric of this process and of processes forked from it by files in `directory`
    (a new private temporary folder by default). Call before the pool forks; idempotent."""
    global _multiproc_dir, _owner_pid
    with _lock:
        if _multiproc_dir is not None:
            return _multiproc_dir
        path = directory or tempfile.mkdtemp(prefix="ethhook-metrics-")
        os.makedirs(path, exist_ok=True)
        # prometheus-client reads the folder from this variable when it opens its value files.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        _prom_values.ValueClass = _prom_values.MultiProcessValue()
        definitions.start_over()
        _multiproc_dir = path
        _owner_pid = os.getpid()
    atexit.register(_remove_multiproc_dir)
    return path


def _remove_multiproc_dir() -> None:
    # Only the process that created the folder removes it (forked children inherit atexit hooks).
    if _multiproc_dir is not None and os.getpid() == _owner_pid:
        shutil.rmtree(_multiproc_dir, ignore_errors=True)


def start_metrics_server(port: int, host: str) -> int:
    """Serve /metrics (see build_exposition_registry) on a daemon thread; returns the bound port."""
    global _server
    server, _thread = start_http_server(port, addr=host, registry=build_exposition_registry())
    _server = server
    return int(server.server_address[1])


def start_worker_metrics(
    sender: Any = None, *, port: int | None = None, host: str | None = None, **_: Any
) -> int | None:
    """Celery `worker_init` receiver (main process, before the pool starts): multiprocess mode and
    the /metrics server on `port` and `host` (default: the settings' worker_metrics_port and
    metrics_host). Returns the port, or None when disabled or the port is taken (logged; the worker
    runs on without metrics)."""
    if port is None or host is None:
        from ethhook.config import get_settings

        settings = get_settings()
        port = settings.worker_metrics_port if port is None else port
        host = settings.metrics_host if host is None else host
    if port == 0 and _server is None:
        return None
    path = enable_multiprocess()
    definitions.current()  # the fixed series (webhooks_delivered_total{status}) exist at 0 already
    if _server is not None:
        return int(_server.server_address[1])
    try:
        bound = start_metrics_server(port, host)
    except OSError as exc:
        log.error(
            "metrics.server.failed port=%s error=%s (set ETHHOOK_WORKER_METRICS_PORT to a free "
            "port per worker on one machine, or 0 to disable)",
            port,
            exc.strerror or exc,
        )
        return None
    log.info(
        "metrics.server.started worker=%s port=%s dir=%s",
        getattr(sender, "hostname", None),
        bound,
        path,
    )
    return bound


def mark_worker_process_dead(pid: int | None = None, **_: Any) -> None:
    """Celery `worker_process_shutdown` receiver: drop the exiting pool process's live gauges."""
    if _multiproc_dir is not None:
        multiprocess.mark_process_dead(pid or os.getpid(), _multiproc_dir)


def stop_worker_metrics(**_: Any) -> None:
    """Celery `worker_shutdown` receiver: stop serving and remove the metrics folder."""
    global _server
    if _server is not None:
        _server.shutdown()
        _server.server_close()
        _server = None
    _remove_multiproc_dir()


def connect_worker_signals() -> None:
    """Hook the three receivers above to Celery's worker signals (call once in celery_app)."""
    from celery.signals import worker_init, worker_process_shutdown, worker_shutdown

    worker_init.connect(start_worker_metrics, weak=False)
    worker_process_shutdown.connect(mark_worker_process_dead, weak=False)
    worker_shutdown.connect(stop_worker_metrics, weak=False)
