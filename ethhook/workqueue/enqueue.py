"""Publish the tasks for leased work, after the leases were committed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kombu.exceptions import KombuError

from ethhook.workqueue.events import MatchGroup
from ethhook.workqueue.lease import DispatchGroup

log = logging.getLogger(__name__)

MATCH_TASK = "ethhook.match.match_events"
DELIVER_TASK = "ethhook.deliver.deliver_endpoint"
REPLAY_TASK = "ethhook.replay.run_chunk"
KWARGS_REPR_CHARS = 1024


def enqueue_groups(groups: Sequence[DispatchGroup], countdown: float | None = None) -> int:
    """Publish one deliver task per group; returns the count (0 when the broker failed)."""
    return _publish(
        DELIVER_TASK,
        [
            {"endpoint_id": g.endpoint_id, "delivery_ids": g.delivery_ids, "token": g.token}
            for g in groups
        ],
        countdown,
    )


def enqueue_match_groups(groups: Sequence[MatchGroup]) -> int:
    """Publish one matcher task per group of stored events; returns the count (0 on failure)."""
    return _publish(
        MATCH_TASK, [{"event_ids": g.event_ids, "token": g.token} for g in groups], None
    )


@dataclass(frozen=True)
class ReplayDispatch:
    """A replay job leased to the message that runs its next chunk."""

    job_id: int
    token: str


def enqueue_replays(dispatches: Sequence[ReplayDispatch]) -> int:
    """Publish one chunk task per leased replay job; returns the count (0 on failure)."""
    return _publish(REPLAY_TASK, [{"job_id": d.job_id, "token": d.token} for d in dispatches], None)


def waiting_messages(task: str) -> int | None:
    """How many messages wait in `task`'s queue (not yet taken by a worker); None when the
    broker cannot say (the caller then behaves as if the queue were empty)."""
    from ethhook.celery_app import app

    with app.connection_or_acquire() as conn:  # the producer pool's: no connect per scan
        errors = (KombuError, OSError, *conn.connection_errors, *conn.channel_errors)
        try:
            # One attempt, no retry loop: beat asks on every scan and must not hang on it.
            conn.ensure_connection(max_retries=0)
            queue = app.amqp.router.route({}, task)["queue"]
            # Declaring with the queue's own arguments is idempotent and answers the count on
            # every transport (Redis sums its priority lists; AMQP counts ready messages).
            return int(queue.bind(conn.default_channel).queue_declare().message_count)
        except errors as exc:
            log.info("dispatch.queue_length.unknown task=%s error=%s", task, exc)
            return None


def _publish(task: str, messages: Sequence[dict[str, Any]], countdown: float | None) -> int:
    """One task per kwargs dict. A broker failure is logged, not raised: the work is leased in
    the database, and when the leases expire the beat job dispatches it again."""
    if not messages:
        return 0
    from ethhook.celery_app import app

    try:
        # One Redis round trip for the whole lot (kombu's publish batch; other transports publish
        # each message at once): per-message publishing cost ~1 ms here, more than matching.
        with app.producer_or_acquire() as producer, producer.batch():
            # Declared once here rather than by every send_task (each copied the queue object: a
            # quarter of the publishing cost).
            queue = app.amqp.router.route({}, task)["queue"]
            producer.maybe_declare(queue)
            for kwargs in messages:
                app.send_task(
                    task,
                    kwargs=kwargs,
                    producer=producer,
                    countdown=countdown,
                    queue=queue,
                    declare=[],
                    # What Flower shows; Celery's own saferepr of it cost a fifth of publishing.
                    argsrepr="()",
                    kwargsrepr=repr(kwargs)[:KWARGS_REPR_CHARS],
                )
    except (KombuError, OSError) as exc:
        log.warning(
            "dispatch.enqueue.failed task=%s messages=%d error=%s; "
            "the beat job will dispatch them again",
            task,
            len(messages),
            exc,
        )
        return 0
    return len(messages)
