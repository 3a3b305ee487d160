"""Publish the tasks for leased work, after the leases were committed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery.utils.nodenames import anon_nodename
from kombu.exceptions import KombuError
from kombu.utils.uuid import uuid

from ethhook.workqueue.events import MatchGroup
from ethhook.workqueue.lease import DispatchGroup, TimeRange
from ethhook.workqueue.ops import OpsDispatch

log = logging.getLogger(__name__)

MATCH_TASK = "ethhook.match.match_events"
DELIVER_TASK = "ethhook.deliver.deliver_endpoint"
REPLAY_TASK = "ethhook.replay.run_chunk"
OPS_TASK = "ethhook.deliver.send_ops"
KWARGS_REPR_CHARS = 1024


def enqueue_groups(groups: Sequence[DispatchGroup], countdown: float | None = None) -> int:
    """Publish one deliver task per group; returns the count (0 when the broker failed)."""
    return _publish(
        DELIVER_TASK,
        [
            {
                "endpoint_id": g.endpoint_id,
                "delivery_ids": g.delivery_ids,
                "token": g.token,
                **range_kwargs(g.event_at_range),
            }
            for g in groups
        ],
        countdown,
    )


def enqueue_ops(dispatches: Sequence[OpsDispatch]) -> int:
    """Publish one ops task per dispatch (deliver queue); returns the count (0 on failure)."""
    return _publish(
        OPS_TASK, [{"message_ids": d.message_ids, "token": d.token} for d in dispatches], None
    )


def enqueue_match_groups(groups: Sequence[MatchGroup]) -> int:
    """Publish one matcher task per group of stored events; returns the count (0 on failure)."""
    return _publish(
        MATCH_TASK,
        [
            {"event_ids": g.event_ids, "token": g.token, **range_kwargs(g.event_at_range)}
            for g in groups
        ],
        None,
    )


def range_kwargs(bounds: TimeRange | None) -> dict[str, list[str]]:
    """A message's rows' time range as a task argument (ISO 8601 times), or none at all: a
    task given none reads every partition, as a message published before partitioning does."""
    if bounds is None:
        return {}
    return {"event_at_range": [bounds[0].isoformat(), bounds[1].isoformat()]}


def range_of(raw: object) -> TimeRange | None:
    """A task's `event_at_range` argument back as times; None when absent or malformed (the
    task then reads every partition: slower, never wrong)."""
    if not (isinstance(raw, list | tuple) and len(raw) == 2):
        return None
    try:
        low, high = (datetime.fromisoformat(str(t)) for t in raw)
    except ValueError:
        return None
    if low.tzinfo is None or high.tzinfo is None or low > high:
        return None
    return low, high


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


class _TaskSender:
    """`app.send_task` for many messages of one task, with what it works out on every call
    (routing, the registered task's options, the parent task, the origin, the reply queue) worked
    out once. Each message is then built by `app.amqp.create_task_message` and published by
    `app.amqp.send_task_message`, the two calls send_task ends with, given the same options, so
    the messages and the before_task_publish signal are the same (tests/integration/
    test_enqueue.py compares them). send_task redoing it per message is a large share of
    publishing (bench/RESULTS.md §1). The private parts it uses are those of Celery and kombu
    5.7, the only series pyproject.toml allows (tests/unit/workqueue/test_publish_pins.py)."""

    def __init__(self, app: Any, task: str, queue: Any, countdown: float | None) -> None:
        self.app, self.task, self.countdown = app, task, countdown
        # The registry as send_task reads it (app.tasks would finalize a publisher-only app and
        # import every task module): a worker's messages carry the task's time limits.
        task_type = app._tasks.get(task)
        options = {
            k: v for k, v in (task_type._get_exec_options() if task_type else {}).items() if v
        }
        self.time_limit = options.pop("time_limit", None)
        self.soft_time_limit = options.pop("soft_time_limit", None)
        self.expires = options.pop("expires", None)
        self.options = {**options, "queue": queue, "declare": [], "argsrepr": "()"}
        if self.expires is not None:
            self.options["expiration"] = self.expires  # a task's `expires`, in seconds
        self.root_id = self.parent_id = None
        parent = app.current_worker_task
        if parent:
            self.root_id = parent.request.root_id or parent.request.id
            self.parent_id = parent.request.id
        self.reply_to = app.thread_oid
        self.origin = anon_nodename()
        self.sent_event = app.conf.task_send_sent_event

    def send(self, producer: Any, kwargs: dict[str, Any]) -> None:
        amqp = self.app.amqp
        # What Flower shows, by plain repr: Celery's saferepr is a large share of publishing.
        options = {**self.options, "kwargsrepr": repr(kwargs)[:KWARGS_REPR_CHARS]}
        message = amqp.create_task_message(
            uuid(), self.task, (), kwargs, self.countdown, None, None, None,
            self.expires, 0, None, None, None, self.reply_to, self.time_limit,
            self.soft_time_limit, self.sent_event, self.root_id, self.parent_id, None, None,
            ignore_result=None, replaced_task_nesting=0, origin=self.origin, **options,
        )  # fmt: skip
        with producer.connection._reraise_as_library_errors():
            amqp.send_task_message(producer, self.task, message, **options)


def _publish(task: str, messages: Sequence[dict[str, Any]], countdown: float | None) -> int:
    """One task per kwargs dict. A broker failure is logged, not raised: the work is leased in
    the database, and when the leases expire the beat job dispatches it again."""
    if not messages:
        return 0
    from ethhook.celery_app import app

    try:
        # One Redis round trip for the whole lot, not one per message (kombu's publish batch;
        # other transports publish each message at once).
        with app.producer_or_acquire() as producer, producer.batch():
            # Declared once here, not by each message: declaring binds a copy of the queue.
            queue = app.amqp.router.route({}, task)["queue"]
            producer.maybe_declare(queue)
            sender = _TaskSender(app, task, queue, countdown)
            for kwargs in messages:
                sender.send(producer, kwargs)
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
