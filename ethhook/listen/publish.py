"""Event batches → matcher tasks on the `match` queue (blocking; runs on a chain's lane)."""

from __future__ import annotations

from collections.abc import Sequence

from kombu.exceptions import KombuError

from ethhook.listen.errors import PublishError
from ethhook.queues import Queue
from ethhook.types import ChainEvent, EventBatch

MATCH_TASK = "ethhook.match.match_events"


def split(chain_id: int, events: Sequence[ChainEvent], size: int) -> list[EventBatch]:
    """Batches of at most `size` events, in chain order."""
    return [
        EventBatch(chain_id=chain_id, events=list(events[start : start + size]))
        for start in range(0, len(events), size)
    ]


def publish_batches(batches: Sequence[EventBatch]) -> int:
    """One matcher task per batch; raises PublishError when the broker does not take them."""
    if not batches:
        return 0
    from ethhook.celery_app import app

    try:
        with app.producer_or_acquire() as producer:
            for batch in batches:
                app.send_task(
                    MATCH_TASK,
                    kwargs={"batch": batch.to_json()},
                    queue=Queue.MATCH.value,
                    producer=producer,
                )
    except (KombuError, OSError) as exc:
        raise PublishError(f"could not publish {len(batches)} event batches: {exc}") from exc
    return len(batches)
